"""Tests against a real local model: llama.cpp's OpenAI-compatible server with SmolLM2-135M
(n_ctx 2048), installed by the tests into ``.cache/llm-venv`` from uv's cache (the first install on
a machine compiles llama-cpp-python: ~7 min on 2 cores, once) and started once for the session
(``local_llm_url``). ``TEST_SKIP_LOCAL_LLM=1`` skips them (e.g. a machine that cannot compile)."""

import os

import pytest


def pytest_collection_modifyitems(config, items):
    if os.environ.get("TEST_SKIP_LOCAL_LLM") != "1":
        return
    skip = pytest.mark.skip(reason="TEST_SKIP_LOCAL_LLM=1: the tests against the real local model are skipped")
    for item in items:
        if "tests/e2e/llm/" in str(item.fspath):
            item.add_marker(skip)
