"""Span-level contracts between the sources and the extract stage.

The hot path (hundreds of MB of spans) works on plain dicts, not pydantic models:
a pydantic model per span would cost more than parsing the JSON. ``RawSpan`` is the
TypedDict every source yields; ``extract`` turns it into a lake row.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict


class RawEvent(TypedDict):
    name: str
    time_ns: int | None
    attributes: dict[str, Any]


class RawSpan(TypedDict):
    """One span as a source hands it over, convention-agnostic.

    - ids are lowercase hex (trace 32 chars, span 16 chars); parent None for a root.
    - attributes / resource are FLAT dicts with dotted keys
      (``llm.input_messages.0.message.role``) and plain JSON values
      (str, int, float, bool, None, list, dict).
    - ``location`` says where the record came from (``file:line`` or ``URL#cursor``).
    """

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    otel_kind: str  # INTERNAL, SERVER, CLIENT, PRODUCER, CONSUMER, UNSPECIFIED
    start_ns: int
    end_ns: int
    status_code: Literal["ok", "error", "unset"]
    status_message: str | None
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope: dict[str, Any]
    events: list[RawEvent]
    location: str
