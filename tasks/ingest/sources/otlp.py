"""OTLP/JSON decoding: one export request (a JSON line) -> RawSpan dicts.

Pure functions, no I/O. Accepts both JSON forms a user meets:
- the OTLP/JSON spec form (hex ids, integer enums, 64-bit ints as strings or numbers),
- the proto-JSON form (base64 ids, enum names such as ``SPAN_KIND_INTERNAL``).
A span that cannot be used raises ``BadRecord`` with a one-line reason; the caller
turns it into a reject row and goes on.
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any, Iterator

from models.spans import RawEvent, RawSpan
from tasks.common.errors import ReplayError

_KINDS = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
_KIND_NAMES = {f"SPAN_KIND_{v}": v for v in _KINDS.values()} | {v: v for v in _KINDS.values()}
_STATUS = {0: "unset", 1: "ok", 2: "error"}
_STATUS_NAMES = {"STATUS_CODE_UNSET": "unset", "STATUS_CODE_OK": "ok", "STATUS_CODE_ERROR": "error",
                 "UNSET": "unset", "OK": "ok", "ERROR": "error"}
_HEX = frozenset("0123456789abcdefABCDEF")


class BadRecord(ReplayError, ValueError):
    """A record that cannot be used; ``str(exc)`` is the one-line reason."""


def decode_id(value: Any, nbytes: int, what: str, *, optional: bool = False) -> str | None:
    """Hex (spec) or base64 (proto-JSON) id -> lowercase hex; all-zero ids are invalid."""
    if value is None or value == "":
        if optional:
            return None
        raise BadRecord(f"missing {what}")
    if not isinstance(value, str):
        raise BadRecord(f"{what} is not a string: {value!r:.60}")
    if len(value) == 2 * nbytes and _HEX.issuperset(value):
        out = value.lower()
    else:
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise BadRecord(f"invalid {what} {value!r:.60}: neither {2 * nbytes} hex digits nor base64") from None
        if len(raw) != nbytes:
            raise BadRecord(f"invalid {what} {value!r:.60}: {len(raw)} bytes, expected {nbytes}")
        out = raw.hex()
    if out.count("0") == len(out):
        if optional:
            return None
        raise BadRecord(f"invalid {what}: all zeros")
    return out


def decode_time(value: Any, what: str) -> int:
    """A fixed64 nanosecond timestamp (string or number) -> int > 0."""
    if isinstance(value, bool) or value is None:
        raise BadRecord(f"missing {what}")
    try:
        ns = int(value)
    except (TypeError, ValueError):
        raise BadRecord(f"unparseable {what}: {value!r:.60}") from None
    if ns <= 0 or ns >= 1 << 63:
        raise BadRecord(f"unparseable {what}: {value!r:.60} is not a time after 1970")
    return ns


def any_value(v: Any) -> Any:
    """OTLP AnyValue object -> plain JSON value."""
    if not isinstance(v, dict) or not v:
        return None
    if "stringValue" in v:
        return v["stringValue"]
    if "intValue" in v:
        iv = v["intValue"]
        try:
            return int(iv)  # beyond 64 bits too: the lake writes it digit for digit, with a note
        except (TypeError, ValueError, OverflowError):
            return iv
    if "boolValue" in v:
        return v["boolValue"]
    if "doubleValue" in v:
        return _double(v["doubleValue"])
    if "arrayValue" in v:
        return [any_value(x) for x in _list(_obj(v["arrayValue"], "arrayValue").get("values"), "arrayValue.values")]
    if "kvlistValue" in v:
        return key_values(_list(_obj(v["kvlistValue"], "kvlistValue").get("values"), "kvlistValue.values"))
    if "bytesValue" in v:
        return v["bytesValue"]  # base64 text, kept as it came
    return None


def _double(dv: Any) -> Any:
    """A doubleValue: a number; one written as text ("1.5", and proto-JSON's "NaN", "Infinity")
    becomes a number when it is a finite one, else stays the text (JSON has no NaN or infinity:
    kept as written rather than turned into null)."""
    if not isinstance(dv, str):
        return dv
    try:
        f = float(dv)
    except ValueError:
        return dv
    return f if math.isfinite(f) else dv


def _obj(v: Any, what: str) -> dict:
    """An optional JSON object ({} when absent); BadRecord when it is something else."""
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise BadRecord(f"{what} is not an object")
    return v


def _list(v: Any, what: str) -> list:
    """An optional JSON array ([] when absent); BadRecord when it is something else."""
    if v is None:
        return []
    if not isinstance(v, list):
        raise BadRecord(f"{what} is not a list")
    return v


def key_values(kvs: Any) -> dict[str, Any]:
    """A list of OTLP KeyValue -> dict (last key wins, as in the SDKs)."""
    if not kvs:
        return {}
    try:  # the fast path: well-formed, mostly string values
        return {kv["key"]: (v["stringValue"] if "stringValue" in v else any_value(v))
                for kv in kvs for v in (kv.get("value") or _EMPTY,)}
    except (TypeError, KeyError, AttributeError):
        pass
    if not isinstance(kvs, list):
        raise BadRecord("attributes is not a list of key/value objects")
    out: dict[str, Any] = {}
    for kv in kvs:
        if not isinstance(kv, dict) or not isinstance(kv.get("key"), str):
            raise BadRecord("attribute without a key")
        out[kv["key"]] = any_value(kv.get("value"))
    return out


_EMPTY: dict = {}


def _kind(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return _KINDS.get(value, "UNSPECIFIED")
    if isinstance(value, str):
        return _KIND_NAMES.get(value.upper(), "UNSPECIFIED")
    return "UNSPECIFIED"


def _status(value: Any) -> tuple[str, str | None]:
    if not value:
        return "unset", None
    if not isinstance(value, dict):
        raise BadRecord("status is not an object")
    code = value.get("code", 0)
    if isinstance(code, str):
        status = _STATUS_NAMES.get(code.upper())
        if status is None and code.isdigit():
            status = _STATUS.get(int(code))
    else:
        status = _STATUS.get(code)
    if status is None:
        raise BadRecord(f"unknown status code {code!r:.40}")
    return status, value.get("message") or None


def decode_span(span: Any, resource: dict[str, Any], scope: dict[str, Any], location: str) -> RawSpan:
    if not isinstance(span, dict):
        raise BadRecord("span is not an object")
    trace_id = decode_id(span.get("traceId"), 16, "traceId")
    span_id = decode_id(span.get("spanId"), 8, "spanId")
    parent = decode_id(span.get("parentSpanId"), 8, "parentSpanId", optional=True)
    start = decode_time(span.get("startTimeUnixNano"), "startTimeUnixNano")
    end = decode_time(span.get("endTimeUnixNano"), "endTimeUnixNano")
    if end < start:
        raise BadRecord("endTimeUnixNano is before startTimeUnixNano")
    status, message = _status(span.get("status"))
    events: list[RawEvent] = []
    for ev in _list(span.get("events"), "events"):
        if not isinstance(ev, dict):
            raise BadRecord("event is not an object")
        t = ev.get("timeUnixNano")
        events.append({"name": ev.get("name") if isinstance(ev.get("name"), str) else "",
                       "time_ns": decode_time(t, "event timeUnixNano") if t not in (None, "", 0, "0") else None,
                       "attributes": key_values(ev.get("attributes"))})
    name = span.get("name")
    return {
        "trace_id": trace_id,  # type: ignore[typeddict-item]
        "span_id": span_id,  # type: ignore[typeddict-item]
        "parent_span_id": parent,
        "name": name if isinstance(name, str) else "",
        "otel_kind": _kind(span.get("kind", 0)),
        "start_ns": start,
        "end_ns": end,
        "status_code": status,  # type: ignore[typeddict-item]
        "status_message": message,
        "attributes": key_values(span.get("attributes")),
        "resource": resource,
        "scope": scope,
        "events": events,
        "location": location,
    }


def iter_request_spans(request: Any, location: str) -> Iterator[tuple[RawSpan | None, str | None, Any]]:
    """Spans of one ExportTraceServiceRequest: yields (span, None, raw) or (None, reason, raw).

    Raises BadRecord when the request itself has the wrong shape (no span can be read).
    """
    if not isinstance(request, dict):
        kind = {list: "an array", str: "a string", type(None): "null", bool: "a boolean"}.get(type(request), "a number")
        raise BadRecord(f"not an OTLP export request: the line is {kind}, not an object")
    rss = request.get("resourceSpans", request.get("resource_spans"))
    if not isinstance(rss, list):
        raise BadRecord("not an OTLP export request: no resourceSpans list")
    for rs in rss:
        if not isinstance(rs, dict):
            raise BadRecord("resourceSpans entry is not an object")
        resource = key_values(_obj(rs.get("resource"), "resource").get("attributes"))
        scope_spans = rs.get("scopeSpans", rs.get("scope_spans", rs.get("instrumentationLibrarySpans")))
        for ss in _list(scope_spans, "scopeSpans"):
            if not isinstance(ss, dict):
                raise BadRecord("scopeSpans entry is not an object")
            sc = _obj(ss.get("scope", ss.get("instrumentationLibrary")), "scope")
            scope = {"name": _text(sc.get("name")), "version": _text(sc.get("version"))}
            for span in _list(ss.get("spans"), "spans"):
                try:
                    yield decode_span(span, resource, scope, location), None, span
                except BadRecord as exc:
                    yield None, str(exc), span
                except (TypeError, ValueError, AttributeError, KeyError) as exc:
                    # a shape no rule above foresaw: still one reject, never a crash
                    yield None, f"unusable span: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}", span


def _text(v: Any) -> str:
    return v if isinstance(v, str) else ""
