"""A Phoenix URL with a password in it (a basic-auth proxy in front of Phoenix), and an API key:
neither reaches an error, a span's ``location``, the ``watermarks`` key, nor any file of the data
dir; the cursor is still found again by the next pull with the same URL. A real HTTP server on
loopback, the real CLI, a real catalog."""

from __future__ import annotations

import base64
import json

from cli_helpers import replay, replay_env
from phoenix_stub import PROJECT, phoenix_stub
from secret_scan import leaks

USER, PASSWORD = "replay", "pw-S3CR3T-4711"
API_KEY = "phx-key-S3CR3T-0815"
BASIC = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


def _sql(data, q):
    r = replay(data, "sql", q, "--format", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _clean(r, *secrets):
    for s in secrets:
        assert s not in r.stdout and s not in r.stderr, (s, r.stdout, r.stderr)


def test_a_password_in_the_phoenix_url_is_never_stored_nor_shown(tmp_path):
    data = tmp_path / "data"
    with phoenix_stub(USER, PASSWORD) as stub:
        url = stub.url(USER, PASSWORD)
        r = replay(data, "--json", "ingest", "--phoenix", url, "--project", PROJECT)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["ingested"] == 4
        _clean(r, PASSWORD, BASIC)
        assert stub.requests[0]["authorization"] == f"Basic {BASIC}"  # the password still works

        shown = f"http://***@127.0.0.1:{stub.port}"
        locations = {row["location"] for row in _sql(data, "select distinct location from spans")}
        assert locations == {f"{shown}/v1/projects/{PROJECT}/spans#cursor="}
        keys = _sql(data, "select key, value from watermarks where source = 'phoenix'")
        assert [k["key"] for k in keys] == [f"{shown}|{PROJECT}"]

        # the same URL again: the same key, so the pull resumes at the stored cursor
        r = replay(data, "--json", "ingest", "--phoenix", url, "--project", PROJECT)
        assert r.returncode == 0, r.stderr
        assert stub.requests[-1]["cursor"] == keys[0]["value"]

        # a wrong password, then a server that fails and echoes the request: one line, no secret
        r = replay(data, "ingest", "--phoenix", stub.url(USER, "wrong-S3CR3T"), "--project", PROJECT)
        assert r.returncode == 1 and shown in r.stderr and len(r.stderr.splitlines()) == 1
        _clean(r, "wrong-S3CR3T", PASSWORD)
        stub.mode = "fail"
        r = replay(data, "ingest", "--phoenix", url, "--project", PROJECT)
        assert r.returncode == 1 and "HTTP 500" in r.stderr and len(r.stderr.splitlines()) == 1
        _clean(r, PASSWORD, BASIC)
    assert leaks(data, PASSWORD, BASIC, "wrong-S3CR3T") == []


def test_an_api_key_echoed_by_a_failing_phoenix_is_not_shown(tmp_path):
    data = tmp_path / "data"
    with phoenix_stub() as stub:
        stub.mode = "fail"
        r = replay(data, "ingest", "--phoenix", f"{stub.url()}/?api_key={API_KEY}", "--project", PROJECT,
                   env=replay_env(REPLAY_PHOENIX_API_KEY=API_KEY))
        assert r.returncode == 1 and len(r.stderr.splitlines()) == 1, r.stderr
        assert f"Bearer {API_KEY}" in stub.requests[0]["authorization"]  # it was sent, and echoed
        _clean(r, API_KEY)
    assert leaks(data, API_KEY) == []


def test_with_prefect_a_url_with_credentials_is_refused_before_it_becomes_a_parameter(tmp_path):
    r = replay(tmp_path / "data", "ingest", "--phoenix", f"http://{USER}:{PASSWORD}@127.0.0.1:9", "--project", PROJECT,
               env=replay_env(PREFECT_API_URL="http://127.0.0.1:9/api"))
    assert r.returncode == 1 and "Prefect stores a flow run's parameters in clear" in r.stderr, r.stderr
    _clean(r, PASSWORD)
