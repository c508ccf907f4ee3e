import pytest


@pytest.fixture(scope="module")
def phoenix():
    """A real Phoenix server (its own venv, auth on, loopback only) for one test module,
    stopped after its last test (a session-wide one idled on through the rest of the suite)."""
    from phoenix_server import phoenix_server

    with phoenix_server() as server:
        yield server
