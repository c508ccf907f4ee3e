"""Tests against a real local model: llama.cpp's OpenAI-compatible server with SmolLM2-135M
(n_ctx 2048), installed by the tests into a venv kept for the machine (``~/.cache/replay/llm-venv-*``,
``TEST_LLM_VENV_CACHE``: the first install on a machine compiles llama-cpp-python, ~7 min on 2
cores, once) and started once for the session (``local_llm_url``). ``TEST_SKIP_LOCAL_LLM=1`` skips them (e.g. a machine that cannot compile).

The install runs once collection is done, before the first test: outside any test's timeout (a
cold compile on a busy machine takes longer than one test may), and only when a test here is
selected."""

import os
import sys

import pytest
from local_llm import local_llm_url  # noqa: F401  (the real local model server, one per test module)


def pytest_collection_modifyitems(config, items):
    if os.environ.get("TEST_SKIP_LOCAL_LLM") != "1":
        return
    skip = pytest.mark.skip(reason="TEST_SKIP_LOCAL_LLM=1: the tests against the real local model are skipped")
    for item in items:
        if "tests/e2e/llm/" in str(item.fspath):
            item.add_marker(skip)


def pytest_collection_finish(session):
    if os.environ.get("TEST_SKIP_LOCAL_LLM") == "1" or session.config.option.collectonly:
        return
    if any("tests/e2e/llm/" in str(item.fspath) for item in session.items):
        from local_llm import LocalLLMInstallError, ensure_llm_venv

        sys.stderr.write("\ninstalling the local model's venv if missing (a cold llama.cpp build: ~7 min) ...\n")
        try:
            ensure_llm_venv()
        except LocalLLMInstallError as exc:  # each test that needs it fails with this, at once
            sys.stderr.write(f"{exc}\n")
