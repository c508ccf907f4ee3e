"""The one scrubber (tasks.common.secrets): credentials out of URLs, headers, free text and the
known key shapes; a URL without credentials unchanged; prose left alone."""

from __future__ import annotations

import pytest

from tasks.common.secrets import scrub, scrub_url, url_secrets


@pytest.mark.parametrize("url, shown", [
    ("http://user:pa55@phoenix:6006", "http://***@phoenix:6006"),
    ("https://tok3n@host/v1/", "https://***@host/v1/"),
    ("https://host/v1?api_key=abc&limit=5", "https://host/v1?api_key=***&limit=5"),
    ("https://host/x?token=t&password=p&secret=s&key=k&sig=g", "https://host/x?token=***&password=***&secret=***"
                                                               "&key=***&sig=***"),
    ("https://b.s3.amazonaws.com/o?X-Amz-Credential=AK%2F1&X-Amz-Signature=ff&X-Amz-Expires=60&a=1",
     "https://b.s3.amazonaws.com/o?X-Amz-Credential=***&X-Amz-Signature=***&X-Amz-Expires=***&a=1"),
    ("https://host/cb#access_token=abc&state=1", "https://host/cb#access_token=***&state=1"),
    # nothing to hide: character for character the same (keys built from it stay stable)
    ("http://127.0.0.1:6006", "http://127.0.0.1:6006"),
    ("http://127.0.0.1:6006/", "http://127.0.0.1:6006/"),
    ("http://h/v1/projects/p/spans#cursor=U3Bhbjo1", "http://h/v1/projects/p/spans#cursor=U3Bhbjo1"),
    ("http://h/?", "http://h/?"),
])
def test_scrub_url(url, shown):
    assert scrub_url(url) == shown
    assert scrub_url(shown) == shown  # idempotent


def test_url_secrets_are_the_password_and_credential_values():
    assert url_secrets("http://me:p%40ss@h/?api_key=k3y&page=2") == ["p@ss", "k3y"]
    assert url_secrets("http://h/") == []


@pytest.mark.parametrize("text, gone", [
    ("Phoenix at http://u:hunter22@phx:6006 answered 500", "hunter22"),
    ("GET /spans Authorization: Bearer eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl", "eyJhbGciOi"),
    ("Authorization: Basic cmVwbGF5OnB3LVMzQ1IzVA==", "cmVwbGF5OnB3LVMzQ1IzVA=="),
    ("use sk-proj-abcdef0123456789 please", "sk-proj-abcdef0123456789"),
    ("ghp_abcdefghijklmnopqrstuvwxyz0123 and AKIAABCDEFGHIJKLMNOP", "ghp_abcdefghij"),
    ("aws AKIAABCDEFGHIJKLMNOP", "AKIAABCDEFGHIJKLMNOP"),
    ('{"api_key": "qwertyuiop123", "n": 1}', "qwertyuiop123"),
    ("password=correct-horse-battery", "correct-horse-battery"),
    ("see https://h/x?token=abc123def456 now", "abc123def456"),
])
def test_scrub_masks_credentials(text, gone):
    out = scrub(text)
    assert gone not in out and "***" in out, out


def test_scrub_masks_the_secrets_it_is_given_also_encoded():
    out = scrub("echo: lk-0123 / p@ss word / p%40ss", "lk-0123", "p@ss")
    assert out == "echo: *** / *** word / ***"
    assert scrub("a b", "", None, "ab") == "a b"  # short or empty secrets mask nothing


@pytest.mark.parametrize("prose", [
    "The token expired; ask the user to sign in again.",
    "bearer documents and basic questions",
    "a task-manager, risk-assessment and the password: reset",
    "Replay at http://127.0.0.1:6006/v1/projects/p/spans#cursor=U3Bhbjo1",
    "no such project support-agent",
])
def test_scrub_leaves_prose_and_clean_urls_alone(prose):
    assert scrub(prose) == prose
