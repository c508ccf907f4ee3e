"""Helpers to make and read OTLP/JSON lines in tests.

Two ways to get OTLP/JSON lines (one ``ExportTraceServiceRequest`` JSON object a line, as the
OpenTelemetry Collector's file exporter writes them):

* from real SDK spans: ``spans_to_otlp_lines(exporter.get_finished_spans())``;
* by hand, without the SDK, for small golden cases:
  ``make_line({"service.name": "svc"}, [make_span(...), ...])``.

Two JSON forms exist in the wild and both are produced here:

* ``"spec"``: the OTLP/JSON encoding of the OTLP specification (and of the Collector):
  hex trace/span ids, enums as integers (``"kind": 1``, ``"code": 2``), int64 as
  decimal strings, lowerCamelCase keys, default values left out.
* ``"proto"``: what ``google.protobuf.json_format.MessageToJson`` makes of the same
  protobuf: base64 ids and enum names (``"SPAN_KIND_INTERNAL"``, ``"STATUS_CODE_ERROR"``).

And back: ``read_otlp_file``, ``iter_spans``, ``any_value_to_python``, ``attributes_to_dict``.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "SPAN_KIND",
    "STATUS_CODE",
    "any_value_to_python",
    "attributes_to_dict",
    "dumps_line",
    "iter_spans",
    "make_event",
    "make_line",
    "make_request",
    "make_span",
    "proto_dict_to_spec",
    "read_otlp_file",
    "request_to_line",
    "spans_to_otlp_lines",
    "spans_to_requests",
    "to_any_value",
    "to_key_values",
    "write_otlp_file",
]

# OTLP enum values (opentelemetry/proto/trace/v1/trace.proto).
SPAN_KIND = {
    "unspecified": 0,
    "internal": 1,
    "server": 2,
    "client": 3,
    "producer": 4,
    "consumer": 5,
}
STATUS_CODE = {"unset": 0, "ok": 1, "error": 2}

_SPAN_KIND_NAMES = {
    "SPAN_KIND_UNSPECIFIED": 0,
    "SPAN_KIND_INTERNAL": 1,
    "SPAN_KIND_SERVER": 2,
    "SPAN_KIND_CLIENT": 3,
    "SPAN_KIND_PRODUCER": 4,
    "SPAN_KIND_CONSUMER": 5,
}
_STATUS_CODE_NAMES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}
_ID_KEYS = ("traceId", "spanId", "parentSpanId")


# --------------------------------------------------------------------------- values


def to_any_value(value: Any) -> dict[str, Any]:
    """A Python value as an OTLP/JSON ``AnyValue`` (spec form).

    str -> stringValue, bool -> boolValue, int -> intValue (a decimal string, as int64
    is written in OTLP/JSON), float -> doubleValue, bytes -> bytesValue (base64),
    list/tuple -> arrayValue, dict -> kvlistValue, None -> ``{}`` (an empty AnyValue).
    """
    if value is None:
        return {}
    if isinstance(value, bool):  # before int: bool is an int
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, (bytes, bytearray)):
        return {"bytesValue": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, Mapping):
        return {"kvlistValue": {"values": to_key_values(value)}}
    if isinstance(value, (list, tuple)):
        return {"arrayValue": {"values": [to_any_value(v) for v in value]}}
    raise TypeError(f"cannot encode {type(value).__name__} as an OTLP AnyValue: {value!r}")


def to_key_values(attrs: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """A dict as a list of OTLP ``KeyValue`` objects, in the dict's order."""
    return [{"key": str(k), "value": to_any_value(v)} for k, v in (attrs or {}).items()]


def any_value_to_python(value: Mapping[str, Any] | None) -> Any:
    """An OTLP/JSON ``AnyValue`` (either form) as a Python value; the inverse of ``to_any_value``.

    ``intValue`` may be a string or a number; ``bytesValue`` comes back as ``bytes``.
    """
    if not value:
        return None
    if "stringValue" in value:
        return value["stringValue"]
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "intValue" in value:
        return int(value["intValue"])
    if "doubleValue" in value:
        return float(value["doubleValue"])  # also "NaN", "Infinity" (proto-JSON strings)
    if "bytesValue" in value:
        return base64.b64decode(value["bytesValue"])
    if "arrayValue" in value:
        return [any_value_to_python(v) for v in value["arrayValue"].get("values", [])]
    if "kvlistValue" in value:
        return attributes_to_dict(value["kvlistValue"].get("values", []))
    raise ValueError(f"unknown AnyValue: {value!r}")


def attributes_to_dict(key_values: Iterable[Mapping[str, Any]] | None) -> dict[str, Any]:
    """A list of OTLP ``KeyValue`` objects as a plain dict (last key wins)."""
    return {kv["key"]: any_value_to_python(kv.get("value")) for kv in key_values or []}


# --------------------------------------------------------------------------- hand-made spans


def _hex_id(value: int | str, nbytes: int) -> str:
    if isinstance(value, int):
        return f"{value:0{nbytes * 2}x}"
    text = value.lower()
    if len(text) != nbytes * 2 or any(c not in "0123456789abcdef" for c in text):
        raise ValueError(f"expected {nbytes * 2} hex digits, got {value!r}")
    return text


def make_event(name: str, time_ns: int, attrs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A span event (spec form)."""
    event: dict[str, Any] = {"timeUnixNano": str(int(time_ns)), "name": name}
    if attrs:
        event["attributes"] = to_key_values(attrs)
    return event


def make_span(
    trace_id: int | str,
    span_id: int | str,
    parent: int | str | None,
    name: str,
    start_ns: int,
    end_ns: int,
    attrs: Mapping[str, Any] | None = None,
    *,
    status: str | tuple[str, str] | None = None,
    events: Sequence[Mapping[str, Any] | tuple[str, int, Mapping[str, Any]]] = (),
    kind: str | int = "internal",
    flags: int | None = None,
) -> dict[str, Any]:
    """One span in the spec form of OTLP/JSON.

    ``trace_id``/``span_id``/``parent``: ints or hex strings (32 / 16 hex digits); ``parent``
    None (or "" / 0) for a root span. ``status``: None/"unset", "ok", "error", or a tuple
    ``("error", "message")``. ``events``: dicts from ``make_event`` or ``(name, time_ns, attrs)``
    tuples. ``kind``: a name from ``SPAN_KIND`` or its integer.
    """
    span: dict[str, Any] = {
        "traceId": _hex_id(trace_id, 16),
        "spanId": _hex_id(span_id, 8),
    }
    if parent not in (None, "", 0):
        span["parentSpanId"] = _hex_id(parent, 8)  # type: ignore[arg-type]
    if flags is not None:
        span["flags"] = flags
    span["name"] = name
    span["kind"] = kind if isinstance(kind, int) else SPAN_KIND[kind.lower()]
    span["startTimeUnixNano"] = str(int(start_ns))
    span["endTimeUnixNano"] = str(int(end_ns))
    if attrs:
        span["attributes"] = to_key_values(attrs)
    if events:
        span["events"] = [
            make_event(e[0], e[1], e[2]) if isinstance(e, tuple) else dict(e) for e in events
        ]
    status_obj: dict[str, Any] = {}
    if status is not None:
        code, message = (status, None) if isinstance(status, str) else status
        if STATUS_CODE[code.lower()]:
            status_obj["code"] = STATUS_CODE[code.lower()]
        if message:
            status_obj["message"] = message
    span["status"] = status_obj
    return span


def make_request(
    resource_attrs: Mapping[str, Any],
    spans: Sequence[Mapping[str, Any]],
    *,
    scope_name: str = "tests",
    scope_version: str | None = None,
) -> dict[str, Any]:
    """One ``ExportTraceServiceRequest`` (as a dict) holding ``spans`` under one resource and scope."""
    scope: dict[str, Any] = {"name": scope_name}
    if scope_version:
        scope["version"] = scope_version
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": to_key_values(resource_attrs)},
                "scopeSpans": [{"scope": scope, "spans": [dict(s) for s in spans]}],
            }
        ]
    }


def make_line(
    resource_attrs: Mapping[str, Any],
    spans: Sequence[Mapping[str, Any]],
    *,
    scope_name: str = "tests",
    scope_version: str | None = None,
) -> str:
    """One OTLP/JSON line (no trailing newline): ``make_request`` serialized compactly."""
    return dumps_line(
        make_request(resource_attrs, spans, scope_name=scope_name, scope_version=scope_version)
    )


def dumps_line(request: Mapping[str, Any]) -> str:
    """Serialize one request the way the Collector does: compact, UTF-8 text (no \\u escapes)."""
    return json.dumps(request, ensure_ascii=False, separators=(",", ":"))


def request_to_line(request: Mapping[str, Any], form: str = "spec") -> str:
    """One request dict in the proto-JSON form (``spans_to_requests``) as one line of ``form``.

    "spec": converted by ``proto_dict_to_spec``, then serialized like the Collector
    (``dumps_line``). "proto": serialized exactly as ``MessageToJson(message, indent=None)``
    does (", "/": " separators, non-ASCII as \\u escapes).
    """
    if form == "spec":
        return dumps_line(proto_dict_to_spec(request))
    if form == "proto":
        return json.dumps(request, indent=None, ensure_ascii=True)
    raise ValueError(f"form must be 'spec' or 'proto', not {form!r}")


# --------------------------------------------------------------------------- SDK spans


def spans_to_requests(spans: Sequence[Any], batch: int = 20) -> list[dict[str, Any]]:
    """SDK ``ReadableSpan``s as ``ExportTraceServiceRequest`` dicts in the proto-JSON form.

    Spans are cut into batches of ``batch`` in the given order (one request each), then
    encoded with the OTLP exporter's own encoder (``encode_spans``, which groups a batch
    by resource and instrumentation scope) and turned into dicts by ``MessageToDict``.
    """
    from google.protobuf.json_format import MessageToDict
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    if batch < 1:
        raise ValueError("batch must be >= 1")
    requests = []
    for i in range(0, len(spans), batch):
        message = encode_spans(list(spans[i : i + batch]))
        requests.append(MessageToDict(message))
    return requests


def proto_dict_to_spec(request: Mapping[str, Any]) -> dict[str, Any]:
    """Convert one request dict from the proto-JSON form to the spec form (a new dict).

    base64 ids -> lowercase hex (``traceId``, ``spanId``, ``parentSpanId``, also in links);
    enum names -> integers (span ``kind``, ``status.code``). Everything else is the same in
    both forms (camelCase keys, int64 as strings).
    """

    def convert(node: Any, parent_key: str | None = None) -> Any:
        if isinstance(node, list):
            return [convert(v, parent_key) for v in node]
        if not isinstance(node, dict):
            return node
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in _ID_KEYS and isinstance(value, str):
                out[key] = base64.b64decode(value).hex()
            elif key == "kind" and isinstance(value, str) and value in _SPAN_KIND_NAMES:
                out[key] = _SPAN_KIND_NAMES[value]
            elif key == "code" and parent_key == "status" and isinstance(value, str):
                out[key] = _STATUS_CODE_NAMES[value]
            else:
                out[key] = convert(value, key)
        return out

    return convert(dict(request))


def spans_to_otlp_lines(
    spans: Sequence[Any],
    form: str = "spec",
    batch: int = 20,
    *,
    transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> list[str]:
    """SDK ``ReadableSpan``s (e.g. ``InMemorySpanExporter().get_finished_spans()``) as OTLP/JSON lines.

    ``form``: "spec" (hex ids, integer enums) or "proto" (``MessageToJson`` output: base64 ids,
    enum names). One line per batch of ``batch`` spans, no trailing newlines. ``transform``
    may rewrite each request dict (proto form, before any conversion), e.g. to scrub paths.
    """
    if form not in ("spec", "proto"):
        raise ValueError(f"form must be 'spec' or 'proto', not {form!r}")
    lines = []
    for request in spans_to_requests(spans, batch=batch):
        if transform is not None:
            request = transform(request)
        lines.append(request_to_line(request, form))
    return lines


# --------------------------------------------------------------------------- files


def write_otlp_file(path: str | Path, lines: Iterable[str]) -> Path:
    """Write lines (one request each) to ``path``; gzip it if the name ends in ``.gz``.

    The gzip header carries no name and mtime 0, so the bytes only depend on the lines.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    if path.suffix == ".gz":
        data = gzip.compress(data, compresslevel=9, mtime=0)
    path.write_bytes(data)
    return path


def read_otlp_file(path: str | Path) -> list[dict[str, Any]]:
    """The requests in an OTLP/JSON lines file (``.gz`` or not); blank lines are skipped."""
    path = Path(path)
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    return [json.loads(line) for line in raw.decode("utf-8").splitlines() if line.strip()]


def _normalize_id(value: str | None, nbytes: int) -> str | None:
    """An id from either form as lowercase hex (None/"" -> None)."""
    if not value:
        return None
    text = value.lower()
    if len(text) == nbytes * 2 and all(c in "0123456789abcdef" for c in text):
        return text
    return base64.b64decode(value).hex()


def iter_spans(requests: Iterable[Mapping[str, Any]]) -> Iterator[dict[str, Any]]:
    """Flatten requests (either form) into simple span dicts, for assertions in tests.

    Each: trace_id, span_id, parent_span_id (hex or None), name, kind (int), start_ns,
    end_ns (int), status_code (int), status_message, attributes (dict), events (list of
    {name, time_ns, attributes}), resource (dict), scope (name).
    """
    for request in requests:
        for rs in request.get("resourceSpans", []):
            resource = attributes_to_dict(rs.get("resource", {}).get("attributes"))
            for ss in rs.get("scopeSpans", []):
                scope = ss.get("scope", {}).get("name")
                for span in ss.get("spans", []):
                    kind = span.get("kind", 0)
                    status = span.get("status", {}) or {}
                    code = status.get("code", 0)
                    yield {
                        "trace_id": _normalize_id(span.get("traceId"), 16),
                        "span_id": _normalize_id(span.get("spanId"), 8),
                        "parent_span_id": _normalize_id(span.get("parentSpanId"), 8),
                        "name": span.get("name"),
                        "kind": _SPAN_KIND_NAMES.get(kind, kind) if isinstance(kind, str) else kind,
                        "start_ns": int(span.get("startTimeUnixNano", 0)),
                        "end_ns": int(span.get("endTimeUnixNano", 0)),
                        "status_code": _STATUS_CODE_NAMES.get(code, code)
                        if isinstance(code, str)
                        else code,
                        "status_message": status.get("message"),
                        "attributes": attributes_to_dict(span.get("attributes")),
                        "events": [
                            {
                                "name": e.get("name"),
                                "time_ns": int(e.get("timeUnixNano", 0)),
                                "attributes": attributes_to_dict(e.get("attributes")),
                            }
                            for e in span.get("events", [])
                        ],
                        "resource": resource,
                        "scope": scope,
                    }
