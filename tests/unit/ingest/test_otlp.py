"""OTLP/JSON decoding: both JSON forms, every AnyValue kind, and the bad records."""

import base64

import pytest

from tasks.ingest.sources.otlp import BadRecord, any_value, decode_id, decode_span, iter_request_spans, key_values

TRACE = "5b8efff798038103d269b633813fc60c"
SPAN = "eee19b7ec3c1b174"


def span(**over):
    s = {"traceId": TRACE, "spanId": SPAN, "name": "x", "kind": 1,
         "startTimeUnixNano": "1544712660000000000", "endTimeUnixNano": "1544712661000000000"}
    s.update(over)
    return s


def test_hex_and_base64_ids_decode_to_the_same_hex():
    b64_trace = base64.b64encode(bytes.fromhex(TRACE)).decode()
    b64_span = base64.b64encode(bytes.fromhex(SPAN)).decode()
    assert decode_id(TRACE.upper(), 16, "traceId") == TRACE
    assert decode_id(b64_trace, 16, "traceId") == TRACE
    assert decode_id(b64_span, 8, "spanId") == SPAN


@pytest.mark.parametrize("bad,reason", [
    ("00000000000000000000000000000000", "all zeros"),
    ("xyz", "neither"),
    ("abcd", "bytes, expected 16"),
    (12, "not a string"),
    (None, "missing"),
])
def test_invalid_trace_ids_are_refused_with_a_reason(bad, reason):
    with pytest.raises(BadRecord, match=reason):
        decode_id(bad, 16, "traceId")


def test_zero_parent_is_a_root():
    raw = decode_span(span(parentSpanId="0000000000000000"), {}, {}, "f:1")
    assert raw["parent_span_id"] is None


def test_spec_and_proto_enums():
    a = decode_span(span(kind=3, status={"code": 2, "message": "boom"}), {}, {}, "f:1")
    b = decode_span(span(kind="SPAN_KIND_CLIENT", status={"code": "STATUS_CODE_ERROR", "message": "boom"}), {}, {}, "f:1")
    assert a["otel_kind"] == b["otel_kind"] == "CLIENT"
    assert a["status_code"] == b["status_code"] == "error"
    assert a["status_message"] == "boom"


def test_times_as_strings_or_numbers():
    a = decode_span(span(startTimeUnixNano=1544712660000000000, endTimeUnixNano="1544712661000000000"), {}, {}, "")
    assert a["end_ns"] - a["start_ns"] == 1_000_000_000


@pytest.mark.parametrize("over,reason", [
    ({"startTimeUnixNano": "yesterday"}, "unparseable startTimeUnixNano"),
    ({"startTimeUnixNano": "0"}, "not a time after 1970"),
    ({"endTimeUnixNano": None}, "missing endTimeUnixNano"),
    ({"endTimeUnixNano": "1000"}, "before"),
    ({"spanId": ""}, "missing spanId"),
])
def test_bad_spans(over, reason):
    with pytest.raises(BadRecord, match=reason):
        decode_span(span(**over), {}, {}, "f:1")


def test_every_anyvalue_kind():
    kvs = [
        {"key": "s", "value": {"stringValue": "é"}},
        {"key": "i", "value": {"intValue": "9007199254740993"}},
        {"key": "i2", "value": {"intValue": 7}},
        {"key": "d", "value": {"doubleValue": 1.5}},
        {"key": "b", "value": {"boolValue": True}},
        {"key": "y", "value": {"bytesValue": "AAE="}},
        {"key": "a", "value": {"arrayValue": {"values": [{"stringValue": "x"}, {"intValue": "2"}]}}},
        {"key": "k", "value": {"kvlistValue": {"values": [{"key": "n", "value": {"boolValue": False}}]}}},
        {"key": "e", "value": {}},
    ]
    assert key_values(kvs) == {"s": "é", "i": 9007199254740993, "i2": 7, "d": 1.5, "b": True, "y": "AAE=",
                               "a": ["x", 2], "k": {"n": False}, "e": None}
    # a double written as text: a number when finite; NaN and infinities (no JSON form) stay the text
    assert any_value({"doubleValue": "1.5"}) == 1.5
    assert [any_value({"doubleValue": v}) for v in ("NaN", "Infinity", "-Infinity", "1e400")] == \
        ["NaN", "Infinity", "-Infinity", "1e400"]
    assert any_value({"intValue": str(1 << 64)}) == 1 << 64  # the lake writes it digit for digit


def test_a_request_yields_good_and_bad_spans_separately():
    req = {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]},
                              "scopeSpans": [{"scope": {"name": "sc"}, "spans": [span(), span(spanId="zz"), 5]}]}]}
    out = list(iter_request_spans(req, "f:1"))
    assert [r is not None for r, _, _ in out] == [True, False, False]
    assert out[0][0]["resource"] == {"service.name": "svc"}
    assert "spanId" in out[1][1] and "not an object" in out[2][1]


@pytest.mark.parametrize("req,reason", [
    ([1, 2], "an array, not an object"),
    ({"foo": 1}, "no resourceSpans"),
    ({"resourceSpans": [3]}, "not an object"),
])
def test_wrong_shape_requests(req, reason):
    with pytest.raises(BadRecord, match=reason):
        list(iter_request_spans(req, "f:1"))
