"""JSON as text, losslessly (tasks.common.text.json_bytes)."""

import json

from tasks.common.text import json_bytes, json_text


def test_integers_beyond_64_bits_are_written_digit_for_digit_with_a_note():
    notes: list[str] = []
    value = {"a": 1 << 64, "b": [-(1 << 70), 5], "c": "x", "d": (1 << 64) - 1}
    out = json_bytes(value, notes, "attributes")
    assert json.loads(out) == value  # Python's json reads every digit back
    assert notes == ["attributes.a, attributes.b[0]: integer beyond 64 bits, kept as written"]


def test_ordinary_values_are_plain_orjson_and_no_note():
    notes: list[str] = []
    assert json_bytes({"a": 1, "b": [1.5, None, True]}, notes) == b'{"a":1,"b":[1.5,null,true]}'
    assert notes == []
    assert json_text([1 << 65]) == f"[{1 << 65}]"
