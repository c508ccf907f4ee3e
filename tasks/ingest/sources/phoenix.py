"""Arize Phoenix as a trace source: its REST API, paged, converted to ``RawSpan`` dicts.

Pure conversion first (:func:`phoenix_span_to_raw`, :func:`parse_phoenix_page`), then the
thin I/O loop (:func:`iter_phoenix_pages`) over an ``httpx.Client`` the caller opens
(:func:`make_phoenix_client` builds one). Checked against arize-phoenix 20.26.1.

The endpoint: ``GET {base}/v1/projects/{project}/spans?sort=id&order=asc&limit=N[&cursor=C]``
answers ``{"data": [span, ...], "next_cursor": str | null}`` with spans like::

    {"id": "U3Bhbjox",                       # Span Global ID = base64("Span:<rowid>")
     "name": "ChatCompletion",
     "context": {"trace_id": "<32 hex>", "span_id": "<16 hex>"},
     "span_kind": "LLM",                     # OpenInference kind; popped from attributes
     "parent_id": "<16 hex>" | null,
     "start_time": "2026-11-26T06:41:07.517946+00:00",   # microseconds, UTC offset
     "end_time": "...", "status_code": "OK" | "ERROR" | "UNSET", "status_message": "",
     "attributes": {"llm.input_messages.0.message.role": "user", ...},   # already flat
     "events": [{"name": "exception", "timestamp": "...", "attributes": {...}}]}

What Phoenix does NOT give back, and what this module puts in its place:

- the OTel span kind (INTERNAL, CLIENT, ...), the resource and the instrumentation scope
  are not stored by Phoenix at all: ``otel_kind`` is ``"UNSPECIFIED"``, ``resource`` is
  ``{"openinference.project.name": project}`` (true by construction: Phoenix files spans
  under that project) and ``scope`` is ``{}``;
- ``openinference.span.kind`` is removed from ``attributes`` and sent as ``span_kind``
  (``"UNKNOWN"`` when the span had none): it is put back into ``attributes``, except
  ``UNKNOWN``, which is left out (as for a file span without a kind). Phoenix also
  synthesises OpenInference attributes (``llm.model_name``, token counts, kind ``LLM``)
  from ``gen_ai.*`` ones at ingestion; they come back alongside the originals;
- times are kept to the microsecond only (``start_ns`` ends in ``000``);
- OpenInference's JSON-string attributes (``metadata``, ``tool.parameters``,
  ``llm.prompt_template.variables``, ``document.metadata`` — Phoenix's own
  ``JSON_STRING_ATTRIBUTES``, matched like Phoenix does, by key suffix) are parsed at
  ingestion and come back flattened (``metadata.tier``, ``tool.parameters.city``). They
  are folded back into one JSON string under the original key, so a span read from
  Phoenix looks like the same span read from an OTLP file. Every other string value,
  JSON or not, is kept as the string it is.

Attributes are flattened defensively whatever the shape (20.x already sends them flat;
other versions and endpoints send nested dicts): nested dicts join keys with ``.`` and
lists that hold dicts are indexed (``{"llm": {"input_messages": [{"message": {"role":
"user"}}]}}`` -> ``llm.input_messages.0.message.role``); lists of plain values stay lists.

Cursor semantics (``sort=id&order=asc``; ids are Phoenix's insertion row ids):

- a request with ``cursor=C`` returns the spans whose row id is ``>= C`` (INCLUSIVE), in
  insertion order, at most ``limit`` of them;
- ``next_cursor`` is the id of the FIRST span of the next page (Phoenix fetches
  ``limit + 1`` rows and returns the extra one's id), so following ``next_cursor`` pages
  never overlap; ``next_cursor`` is ``null`` on the last page;
- the cursor format is the span's Global ID, the same string as the span's ``id``.

What to persist to resume without gaps: :attr:`PhoenixPage.resume_cursor`, AFTER the
page's spans are stored. It is ``next_cursor`` when there is one, else the ``id`` of the
last span of the page (so the next pull starts AT that span: it is read again, once, and
dropped downstream by the ``(trace_id, span_id)`` dedup), else, for an empty page, the
cursor the page was asked with. Persisting the id of a span already read (not an id
+ 1) is what guarantees no gap, also when that span was later deleted by retention:
the boundary is a ``>=`` comparison on row ids, not a lookup. A crash between storing a
page and persisting its cursor re-reads that page; dedup absorbs it.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from models.ingest import ExtractInfo
from models.spans import RawEvent, RawSpan
from tasks.common.errors import ReplayError
from tasks.common.retry import (
    TRANSIENT_STATUSES,
    RetryPolicy,
    TransientResponse,
    attempts_of,
    raise_for_transient,
)
from tasks.common.secrets import scrub, scrub_url
from tasks.store import catalog

SOURCE = "phoenix"
MAX_PAGE_SIZE = 1000  # Phoenix 20.x answers 422 above this
RETRY_ATTEMPTS = 3
RETRY_WAIT_S = 0.5  # ceiling of the first (jittered) backoff; doubles, capped at RETRY_WAIT_MAX_S
RETRY_WAIT_MAX_S = 4.0  # also the cap of a Retry-After
RETRY_STATUSES = TRANSIENT_STATUSES  # 429 and 5xx (tasks.common.retry)
# Phoenix's phoenix.trace.attributes.JSON_STRING_ATTRIBUTES, tested with str.endswith
# ("document.metadata" ends with "metadata").
JSON_STRING_SUFFIXES = ("metadata", "tool.parameters", "llm.prompt_template.variables")

_HEX32 = re.compile(r"^[0-9a-fA-F]{32}$")
_HEX16 = re.compile(r"^[0-9a-fA-F]{16}$")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_STATUS = {
    "OK": "ok", "STATUS_CODE_OK": "ok",
    "ERROR": "error", "STATUS_CODE_ERROR": "error",
    "UNSET": "unset", "STATUS_CODE_UNSET": "unset", "": "unset",
}


class PhoenixError(ReplayError, RuntimeError):
    """A one-line, user-facing failure talking to Phoenix (never carries the API key nor the
    URL's password: the message is scrubbed, tasks.common.secrets)."""

    def __init__(self, message: str) -> None:
        super().__init__(scrub(message))


@dataclass(slots=True)
class PhoenixReject:
    """A span record that could not become a RawSpan: becomes a ``rejects`` row."""

    location: str
    reason: str
    raw: str  # the record as JSON text, untruncated (the extract stage truncates)


@dataclass(slots=True)
class PhoenixPage:
    """One page of ``GET /v1/projects/{project}/spans``, converted."""

    project: str
    cursor: str | None  # the cursor this page was asked with (None: from the start)
    next_cursor: str | None  # Phoenix's: first span of the next page; None on the last
    resume_cursor: str | None  # persist this after storing ``spans`` (see module doc)
    location: str  # f"{base_url}/v1/projects/{project}/spans#cursor={cursor or ''}", base_url scrubbed
    spans: list[RawSpan] = field(default_factory=list)
    rejects: list[PhoenixReject] = field(default_factory=list)

    @property
    def record_count(self) -> int:
        return len(self.spans) + len(self.rejects)


# --------------------------------------------------------------------------- conversion


def flatten_attributes(value: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flat dotted keys from nested dicts and lists of dicts (indexed); other lists kept."""
    out: dict[str, Any] = {}
    _flatten_into(out, value, prefix)
    return out


def _flatten_into(out: dict[str, Any], value: Any, key: str) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            _flatten_into(out, v, f"{key}.{k}" if key else str(k))
    elif isinstance(value, list) and any(isinstance(v, Mapping) for v in value):
        for i, v in enumerate(value):
            _flatten_into(out, v, f"{key}.{i}" if key else str(i))
    elif key:
        out[key] = value


def _json_string_root(key: str) -> str | None:
    """The shortest dotted prefix of ``key`` (strictly shorter) that Phoenix JSON-parses."""
    pos = key.find(".")
    while pos != -1:
        if key[:pos].endswith(JSON_STRING_SUFFIXES):
            return key[:pos]
        pos = key.find(".", pos + 1)
    return None


def _renest(pairs: list[tuple[list[str], Any]]) -> Any:
    tree: dict[str, Any] = {}
    for parts, value in pairs:
        node = tree
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[parts[-1]] = value
    return _lists_back(tree)


def _lists_back(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    items = {k: _lists_back(v) for k, v in node.items()}
    if items and all(k.isdigit() for k in items) and sorted(map(int, items)) == list(
        range(len(items))
    ):
        return [items[str(i)] for i in range(len(items))]
    return items


def restore_json_string_attributes(flat: dict[str, Any]) -> dict[str, Any]:
    """Fold ``metadata.x``-style keys back into the JSON string ``metadata`` (see module doc)."""
    groups: dict[str, list[tuple[list[str], Any]]] = {}
    out: dict[str, Any] = {}
    for key, value in flat.items():
        root = _json_string_root(key)
        if root is None or root in flat:
            out[key] = value
        else:
            groups.setdefault(root, []).append((key[len(root) + 1:].split("."), value))
    for root, pairs in groups.items():
        out[root] = json.dumps(_renest(pairs), ensure_ascii=False)
    return out


def iso_to_ns(value: Any) -> int:
    """ISO-8601 (naive = UTC) to integer epoch nanoseconds, without float rounding."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"not an ISO timestamp: {value!r}")
    dt = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    delta = dt - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def _hex_id(value: Any, pattern: re.Pattern[str], what: str) -> str:
    if not isinstance(value, str) or not pattern.match(value):
        raise ValueError(f"bad {what} {value!r}")
    if set(value) == {"0"}:
        raise ValueError(f"bad {what} {value!r} (all zeros)")
    return value.lower()


def _event(ev: Any) -> RawEvent:
    if not isinstance(ev, Mapping):
        raise ValueError(f"event is not an object: {ev!r:.80}")
    try:
        time_ns: int | None = iso_to_ns(ev.get("timestamp"))
    except (ValueError, TypeError):
        time_ns = None
    attrs = ev.get("attributes") or {}
    return RawEvent(
        name=str(ev.get("name") or ""),
        time_ns=time_ns,
        attributes=flatten_attributes(attrs) if isinstance(attrs, Mapping) else {},
    )


def phoenix_span_to_raw(record: Any, *, project: str, location: str) -> RawSpan:
    """One Phoenix REST span -> RawSpan. Raises ``ValueError(reason)`` if unusable."""
    if not isinstance(record, Mapping):
        raise ValueError("span record is not a JSON object")
    ctx = record.get("context")
    if not isinstance(ctx, Mapping):
        raise ValueError("missing context {trace_id, span_id}")
    trace_id = _hex_id(ctx.get("trace_id"), _HEX32, "trace_id")
    span_id = _hex_id(ctx.get("span_id"), _HEX16, "span_id")
    parent = record.get("parent_id") or None
    parent_span_id = _hex_id(parent, _HEX16, "parent_id") if parent is not None else None
    try:
        start_ns = iso_to_ns(record.get("start_time"))
    except (ValueError, TypeError) as e:
        raise ValueError(f"bad start_time: {e}") from None
    try:
        end_ns = iso_to_ns(record.get("end_time"))
    except (ValueError, TypeError) as e:
        raise ValueError(f"bad end_time: {e}") from None
    status_raw = record.get("status_code")
    status = _STATUS.get(str(status_raw or "").upper())
    if status is None:
        raise ValueError(f"unknown status_code {status_raw!r}")
    attrs_in = record.get("attributes") or {}
    if not isinstance(attrs_in, Mapping):
        raise ValueError(f"attributes is not an object: {type(attrs_in).__name__}")
    attributes = restore_json_string_attributes(flatten_attributes(attrs_in))
    kind = record.get("span_kind")
    if isinstance(kind, str) and kind and kind.upper() != "UNKNOWN":
        # UNKNOWN is Phoenix's default for a span that had no kind: leave it absent, as
        # the same span read from a file would be, so kind detection can fall back.
        attributes.setdefault("openinference.span.kind", kind.upper())
    events_in = record.get("events") or []
    if not isinstance(events_in, list):
        raise ValueError("events is not a list")
    name = record.get("name")
    return RawSpan(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent_span_id,
        name=name if isinstance(name, str) else "",
        otel_kind="UNSPECIFIED",  # Phoenix does not keep the OTel span kind
        start_ns=start_ns,
        end_ns=end_ns,
        status_code=status,  # type: ignore[typeddict-item]
        status_message=record.get("status_message") or None,
        attributes=attributes,
        resource={"openinference.project.name": project},
        scope={},
        events=[_event(ev) for ev in events_in],
        location=location,
    )


def page_location(base_url: str, project: str, cursor: str | None) -> str:
    """Where a page's spans came from (every span's ``location``): the URL without credentials."""
    return f"{scrub_url(base_url).rstrip('/')}/v1/projects/{project}/spans#cursor={cursor or ''}"


def parse_phoenix_page(
    body: Any, *, base_url: str, project: str, cursor: str | None
) -> PhoenixPage:
    """A decoded response body -> PhoenixPage. Raises PhoenixError if it is not a page."""
    base_url = scrub_url(base_url)
    location = page_location(base_url, project, cursor)
    if not isinstance(body, Mapping) or not isinstance(body.get("data"), list):
        raise PhoenixError(
            f"unexpected answer from Phoenix at {base_url} for project {project}: "
            "not a spans page ({\"data\": [...], \"next_cursor\": ...})"
        )
    next_cursor = body.get("next_cursor") or None
    page = PhoenixPage(project=project, cursor=cursor, next_cursor=next_cursor,
                       resume_cursor=cursor, location=location)
    last_id: str | None = None
    for record in body["data"]:
        if isinstance(record, Mapping) and isinstance(record.get("id"), str) and record["id"]:
            last_id = record["id"]
        try:
            page.spans.append(phoenix_span_to_raw(record, project=project, location=location))
        except (ValueError, TypeError) as e:
            page.rejects.append(PhoenixReject(
                location=location, reason=f"phoenix span: {e}",
                raw=orjson.dumps(record, default=str).decode(),
            ))
    page.resume_cursor = next_cursor or last_id or cursor
    return page


# --------------------------------------------------------------------------- I/O


def make_phoenix_client(
    base_url: str, api_key: str | None = None, *, timeout: float = 30.0
) -> httpx.Client:
    """An httpx client for :func:`iter_phoenix_pages`: root URL (no ``/v1``), bearer key. A user
    and password in the URL (a basic-auth proxy in front of Phoenix) become the Basic
    ``Authorization`` header (as httpx would send them, in place of the key) and leave the
    client's URL, so that no error, location or key built from it carries them."""
    url = httpx.URL(base_url.rstrip("/"))
    headers = {"Accept": "application/json"}
    if url.username or url.password:
        basic = base64.b64encode(f"{url.username}:{url.password}".encode()).decode()
        headers["Authorization"] = f"Basic {basic}"
        url = url.copy_with(userinfo=b"")
    elif api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return httpx.Client(base_url=url, headers=headers, timeout=timeout)


def _client_secrets(client: httpx.Client) -> tuple[str, ...]:
    """The credentials a client sends (its key, its basic-auth password and header), to mask in
    whatever a server answers: some echo the request back."""
    scheme, _, value = client.headers.get("authorization", "").partition(" ")
    out = [value]
    if scheme.lower() == "basic":
        try:
            out.append(base64.b64decode(value).decode().partition(":")[2])
        except (binascii.Error, UnicodeDecodeError):
            pass
    return tuple(v for v in out if v)


def _retry_policy() -> RetryPolicy:
    """The knobs read when a request is made (tests set them to 0)."""
    return RetryPolicy(attempts=RETRY_ATTEMPTS, backoff_s=RETRY_WAIT_S,
                       backoff_max_s=RETRY_WAIT_MAX_S, retry_after_max_s=RETRY_WAIT_MAX_S)


def _detail(response: httpx.Response, secrets: tuple[str, ...] = ()) -> str:
    text = scrub(response.text.strip(), *secrets)
    try:
        detail = response.json().get("detail", text)
    except (ValueError, AttributeError):
        detail = text
    if not isinstance(detail, str):
        detail = json.dumps(detail)
    return " ".join(scrub(detail, *secrets).split())[:200]


def _get(client: httpx.Client, path: str, params: dict[str, Any], base_url: str) -> httpx.Response:
    try:
        response, _ = _retry_policy().call(lambda: raise_for_transient(client.get(path, params=params)))
    except TransientResponse as e:
        raise PhoenixError(
            f"Phoenix at {base_url} kept failing: HTTP {e.response.status_code} "
            f"{_detail(e.response, _client_secrets(client))} (after {attempts_of(e)} attempts)"
        ) from None
    except httpx.TransportError as e:
        raise PhoenixError(
            f"cannot reach Phoenix at {base_url}: {type(e).__name__}: {scrub(str(e), *_client_secrets(client))} "
            f"(after {attempts_of(e)} attempts); is the server up and the URL right?"
        ) from None
    return response


def _check(response: httpx.Response, *, client: httpx.Client, base_url: str,
           project: str, cursor: str | None) -> Any:
    status = response.status_code
    secrets = _client_secrets(client)
    if status in (401, 403):
        if "authorization" not in client.headers:
            raise PhoenixError(
                f"Phoenix refused the request at {base_url} (HTTP {status}): it needs an API "
                "key; set REPLAY_PHOENIX_API_KEY"
            )
        if client.headers["authorization"].lower().startswith("basic "):
            raise PhoenixError(
                f"Phoenix refused the user and password of the URL {base_url} (HTTP {status}: "
                f"{_detail(response, secrets)}); check them"
            )
        raise PhoenixError(
            f"Phoenix refused the API key at {base_url} (HTTP {status}: {_detail(response, secrets)}); "
            "check REPLAY_PHOENIX_API_KEY (a system or user API key from Phoenix settings)"
        )
    if status == 404:
        detail = _detail(response, secrets)
        if detail.lower().startswith("project"):
            raise PhoenixError(f"no project {project} in Phoenix at {base_url}")
        raise PhoenixError(
            f"Phoenix at {base_url} has no spans API for project {project} (HTTP 404: "
            f"{detail}); is {base_url} the Phoenix root URL?"
        )
    if status == 422 and cursor is not None and "cursor" in response.text.lower():
        raise PhoenixError(
            f"Phoenix at {base_url} rejected the saved cursor {cursor!r} for project "
            f"{project}: it is not a sort=id span cursor; reset the Phoenix cursor"
        )
    if status != 200:
        raise PhoenixError(
            f"Phoenix at {base_url} answered HTTP {status} for project {project}: "
            f"{_detail(response, secrets)}"
        )
    try:
        return response.json()
    except ValueError:
        raise PhoenixError(
            f"Phoenix at {base_url} answered non-JSON for project {project} "
            f"({response.headers.get('content-type', '?')}); is {base_url} the Phoenix "
            "root URL (without /v1)?"
        ) from None


def iter_phoenix_pages(
    client: httpx.Client, project: str, cursor: str | None, page_size: int, *, url: str | None = None
) -> Iterator[PhoenixPage]:
    """Every span of ``project`` from ``cursor`` (inclusive; None = from the first span)
    on, in insertion order, one converted page per request, until the last page.

    Always yields at least one page (possibly empty), so the caller always has a
    ``resume_cursor`` to persist. ``client`` carries base URL and auth
    (:func:`make_phoenix_client`); ``url``, the URL as given (default: the client's), is what
    errors and locations show, credentials masked. Transient failures (connection errors, 429, 5xx) are
    retried ``RETRY_ATTEMPTS`` times in all; anything else raises :class:`PhoenixError`.
    """
    base_url = scrub_url((url or str(client.base_url)).rstrip("/"))  # what errors and locations show
    if not base_url:
        raise ValueError("iter_phoenix_pages needs a client with base_url set")
    limit = max(1, min(int(page_size), MAX_PAGE_SIZE))
    path = f"/v1/projects/{quote(project, safe='')}/spans"
    while True:
        params: dict[str, Any] = {"sort": "id", "order": "asc", "limit": limit}
        if cursor:
            params["cursor"] = cursor
        response = _get(client, path, params, base_url)
        body = _check(response, client=client, base_url=base_url, project=project, cursor=cursor)
        page = parse_phoenix_page(body, base_url=base_url, project=project, cursor=cursor)
        yield page
        if page.next_cursor is None:
            return
        if page.next_cursor == cursor:
            raise PhoenixError(
                f"Phoenix at {base_url} returned the same cursor {cursor!r} twice for project "
                f"{project}; stopping instead of looping"
            )
        cursor = page.next_cursor


# --------------------------------------------------------------------------- the pull stage
def watermark_key(url: str, project: str) -> str:
    """The cursor's key: the URL without credentials (the same URL gives the same key, whatever
    its password) and the project."""
    return f"{scrub_url(url).rstrip('/')}|{project}"


def pull(open_catalog, settings, url: str, project: str) -> list[ExtractInfo]:
    """Pull every span of ``project`` added since the last pull; commit every
    ``phoenix_commit_spans`` spans. Raises PhoenixError after storing what it got.
    ``open_catalog()``: the catalog, opened for each commit only (never while pages download:
    meanwhile other processes read it); hold the writer lock around the pull."""
    from tasks.ingest.extract import extract_spans

    key = watermark_key(url, project)
    with open_catalog() as con:
        cursor = catalog.get_watermark(con, SOURCE, key)
    api_key = settings.phoenix_api_key.get_secret_value() if settings.phoenix_api_key else None
    infos: list[ExtractInfo] = []
    pending: list[PhoenixPage] = []

    def commit() -> None:
        if not pending:
            return
        spans = [s for p in pending for s in p.spans]
        rejects = [{"location": r.location, "reason": r.reason, "raw": r.raw} for p in pending for r in p.rejects]
        with open_catalog() as con:
            infos.append(extract_spans(con, settings, spans, rejects, source=SOURCE, project=project))
            catalog.set_watermark(con, SOURCE, key, pending[-1].resume_cursor)
        pending.clear()

    with make_phoenix_client(url, api_key) as client:
        try:
            for page in iter_phoenix_pages(client, project, cursor, settings.phoenix_page_size, url=url):
                pending.append(page)
                if sum(len(p.spans) + len(p.rejects) for p in pending) >= settings.phoenix_commit_spans:
                    commit()
        except PhoenixError:
            commit()
            raise
        commit()
    return infos
