"""The e2e tests' servers are started by the modules that use them (tests/e2e/ingest/conftest.py:
Phoenix; tests/e2e/llm/conftest.py: the local model) and stopped after their last test, so that
no server idles (or finishes a generation a client gave up on) while the rest of the suite runs."""
