import pytest


@pytest.fixture(scope="session")
def phoenix():
    """A real Phoenix server (its own venv, auth on, loopback only) for the session."""
    from phoenix_server import phoenix_server

    with phoenix_server() as server:
        yield server


from local_llm import local_llm_url  # noqa: E402,F401  (session fixture: the real local model server)
