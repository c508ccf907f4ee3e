"""The one scrubber: credentials taken out of a text before it is shown or stored.

Every error that reaches a user or a row, every location and key built from a URL, and every
model reply kept for review passes through :func:`scrub` (or :func:`scrub_url` for a URL alone):

- the secrets the caller knows (an API key, a URL's password), verbatim and percent-encoded;
- in URLs: the user info (``https://user:pass@host`` -> ``https://***@host``) and query or
  fragment parameters named like a credential (``api_key``, ``token``, ``password``, ``secret``,
  ``key``, ``sig``/``signature``, ``X-Amz-*``, ...: ``?api_key=***``);
- ``Bearer``/``Basic`` credentials, and ``api_key=...`` / ``"password": "..."`` pairs in free text;
- the known key shapes: OpenAI/Anthropic-style ``sk-...``, GitHub ``ghp_...``/``github_pat_...``,
  AWS access key ids ``AKIA...``, Slack ``xox?-...``, Google ``AIza...``, Hugging Face ``hf_...``,
  and JSON Web Tokens (Phoenix's API keys are JWTs).

A URL without credentials comes back unchanged (character for character), so a key built from
it stays what it was.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote, unquote, urlsplit, urlunsplit

MASK = "***"

# a query/fragment parameter whose value is a credential, by its name
_SECRET_PARAM = re.compile(
    r"(?i)^(?:x-amz-.*|x-goog-(?:signature|credential).*|.*(?:key|token|passw(?:or)?d|pwd|secret|sig|signature|"
    r"credentials?|auth))$")
_URL = re.compile(r"(?i)\b[a-z][a-z0-9+.\-]*://[^\s<>\"'`]+")
_AUTH_SCHEME = re.compile(r"(?i)\b(bearer|basic)(\s+)([A-Za-z0-9._~+/=\-]{8,})")
_PAIR = re.compile(
    r"(?i)([\"']?\b(?:api[_\-]?key|apikey|access[_\-]?key|secret[_\-]?key|access[_\-]?token|auth[_\-]?token|"
    r"refresh[_\-]?token|id[_\-]?token|token|password|passwd|pwd|secret|client[_\-]?secret)[\"']?\s*[:=]\s*[\"']?)"
    r"([^\s\"'&,;{}<>]{8,})")
_SHAPES = re.compile(
    r"\bsk-[A-Za-z0-9_\-]{8,}"
    r"|\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}|\bgithub_pat_[A-Za-z0-9_]{20,}"
    r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"
    r"|\bxox[abposr]-[A-Za-z0-9\-]{10,}"
    r"|\bAIza[0-9A-Za-z_\-]{30,}"
    r"|\bhf_[A-Za-z0-9]{20,}"
    r"|\beyJ[A-Za-z0-9_\-]{6,}\.[A-Za-z0-9_\-]{6,}\.[A-Za-z0-9_\-]{6,}")


def _scrub_params(part: str) -> str:
    """``a=1&api_key=x`` -> ``a=1&api_key=***`` (names kept, order kept)."""
    if "=" not in part:
        return part
    out = []
    for item in part.split("&"):
        name, sep, value = item.partition("=")
        out.append(f"{name}={MASK}" if sep and value and _SECRET_PARAM.match(unquote(name)) else item)
    return "&".join(out)


def scrub_url(url: str) -> str:
    """``url`` without credentials: user info and credential parameters masked; unchanged when it
    has none."""
    try:
        parts = urlsplit(url)
    except ValueError:  # not a URL after all (an unclosed IPv6 bracket): the text rules still apply
        return url
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rsplit('@', 1)[1]}"
    query, fragment = _scrub_params(parts.query), _scrub_params(parts.fragment)
    if (netloc, query, fragment) == (parts.netloc, parts.query, parts.fragment):
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def url_secrets(url: str) -> list[str]:
    """The credentials a URL carries (its password, credential parameters' values), to mask
    wherever they show up on their own (a server may echo them)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    out = [unquote(parts.password)] if parts.password else []
    for part in (parts.query, parts.fragment):
        for item in part.split("&"):
            name, sep, value = item.partition("=")
            if sep and value and _SECRET_PARAM.match(unquote(name)):
                out.append(unquote(value))
    return out


def _known(secrets: Iterable[str | None]) -> list[str]:
    """The given secrets, each also percent-encoded and decoded; longest first, short ones left
    out (masking every "ab" would garble a text and hide nothing)."""
    out: set[str] = set()
    for s in secrets:
        if s and len(s) >= 4:
            out.update({s, quote(s, safe=""), unquote(s)})
    return sorted((s for s in out if len(s) >= 4), key=len, reverse=True)


def _credential_like(value: str) -> bool:
    """A token rather than a word: a digit, base64 padding or symbols, or mixed case."""
    return (any(c.isdigit() or c in "=+/_" for c in value)
            or (len(value) >= 12 and value != value.lower() and value != value.upper()))


def _auth(m: re.Match[str]) -> str:
    """``Bearer <credential>`` masked; ``bearer documents`` (a word: prose) kept."""
    return f"{m.group(1)}{m.group(2)}{MASK}" if _credential_like(m.group(3)) else m.group(0)


def scrub(text: str | None, *secrets: str | None) -> str:
    """``text`` without ``secrets`` nor any credential it shows (see the module doc)."""
    if not text:
        return text or ""
    for s in _known(secrets):
        text = text.replace(s, MASK)
    text = _URL.sub(lambda m: scrub_url(m.group(0)), text)
    text = _AUTH_SCHEME.sub(_auth, text)
    text = _PAIR.sub(lambda m: f"{m.group(1)}{MASK}", text)
    return _SHAPES.sub(MASK, text)


__all__ = ["MASK", "scrub", "scrub_url", "url_secrets"]
