"""Tool-call arguments as values, whatever form a trace or an agent gave them in. Pure
functions, no I/O.

- :func:`parse_args`: JSON text parsed when it parses, else kept as text.
- :func:`canonical_json`: tool-call arguments compared as parsed JSON: key order and
  whitespace do not matter, ``1 == 1.0``, strings compare exactly, ``true`` is not ``1``;
  ``None``, ``""`` and ``{}`` all mean "no arguments".
"""

from __future__ import annotations

import json
import math
from typing import Any


def parse_args(arguments: Any) -> Any:
    """Arguments as Python: JSON text parsed when it parses, else kept as text."""
    if isinstance(arguments, (bytes, bytearray)):
        arguments = arguments.decode("utf-8", "replace")
    if isinstance(arguments, str):
        s = arguments.strip()
        if not s:
            return None
        try:
            return json.loads(s)
        except ValueError:
            return arguments
    return arguments


def _norm(value: Any) -> Any:
    """A JSON value with numbers unified (1.0 -> 1) and no-arguments forms unified."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) < 2**63:
            return int(value)
        return value
    if isinstance(value, dict):
        return {str(k): _norm(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_norm(v) for v in value]
    if hasattr(value, "model_dump"):
        return _norm(value.model_dump(mode="json"))
    return str(value)


def canonical_json(arguments: Any) -> str:
    """The canonical JSON text of tool-call arguments: parsed, numbers unified, keys
    sorted, no whitespace; ``None``, ``""`` and ``{}`` all give ``{}``. Equal canonical
    texts mean equal arguments."""
    value = _norm(parse_args(arguments))
    if value is None or value == {}:
        value = {}
    if isinstance(value, str):  # unparseable text: compared as that exact text
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=True)


__all__ = ["canonical_json", "parse_args"]
