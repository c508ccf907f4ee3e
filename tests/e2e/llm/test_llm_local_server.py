import httpx
import pytest

from tasks.common.local_llm import LOCAL_MODEL

pytestmark = pytest.mark.slow


def test_local_server_answers_a_chat(local_llm_url):
    assert local_llm_url.startswith("http://127.0.0.1:") and local_llm_url.endswith("/v1")
    r = httpx.post(f"{local_llm_url}/chat/completions", timeout=60,
                   json={"model": LOCAL_MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}]})
    assert r.status_code == 200
    assert r.json()["choices"][0]["message"]["content"]
