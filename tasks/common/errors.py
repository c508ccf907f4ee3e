"""The one error base. Every error Replay raises on purpose is a :class:`ReplayError` whose
message is one line a user can act on: what failed, on which id, and what to do next. The
CLI prints that line as it is (no traceback unless ``--debug``); anything else reaching the
CLI is a bug and is reported with its type.

A value pydantic refused is worded by :func:`validation_text` (what is wrong with which field,
in one line), never with pydantic's own text (model names, ``[type=...]``, its URLs); the CLI
names its fields by their flags (``replay/options.py``)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any


class ReplayError(Exception):
    """A failure a user can act on, told in one line."""


_BOUNDS = {"greater_than_equal": ("ge", "at least"), "greater_than": ("gt", "greater than"),
           "less_than_equal": ("le", "at most"), "less_than": ("lt", "less than")}
_KINDS = {"int_parsing": "a whole number", "int_from_float": "a whole number", "int_type": "a whole number",
          "float_parsing": "a number", "float_type": "a number", "bool_parsing": "true or false",
          "bool_type": "true or false", "string_type": "text", "list_type": "a list", "dict_type": "an object",
          "model_type": "an object", "model_attributes_type": "an object", "json_invalid": "valid JSON",
          "datetime_parsing": "a date and time", "datetime_type": "a date and time"}


def _bound(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _shown(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:59] + "…"


def problem(err: dict[str, Any]) -> str:
    """What is wrong with a value, from one pydantic error (``exc.errors()`` item)."""
    kind, ctx, value = err.get("type", ""), err.get("ctx") or {}, err.get("input")
    if kind in ("literal_error", "enum"):
        choices = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        return f"{_shown(value)} is not one of {', '.join(choices)}"
    if kind in _BOUNDS:
        key, words = _BOUNDS[kind]
        return f"must be {words} {_bound(ctx.get(key))} (got {_shown(value)})"
    if kind in _KINDS:
        return f"must be {_KINDS[kind]} (got {_shown(value)})"
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a known setting"
    if kind in ("string_too_short", "too_short"):
        return f"is too short (at least {ctx.get('min_length')})"
    if kind in ("string_too_long", "too_long"):
        return f"is too long (at most {ctx.get('max_length')})"
    msg = re.sub(r"^(Value|Assertion) error, ", "", str(err.get("msg") or kind))
    msg = re.sub(r"^Input should be ", "must be ", msg)
    msg = msg[:1].lower() + msg[1:]
    return msg if kind in ("value_error", "assertion_error") or value is None else f"{msg} (got {_shown(value)})"


def model_words(model: str) -> str:
    """A model's name as words: ``AgentDefinition`` -> ``agent definition``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", model).lower() or "value"


def default_name(model: str, loc: tuple[Any, ...]) -> str:
    path = ".".join(str(x) for x in loc)
    return f"{model_words(model)}: {path}" if path else model_words(model)


def validation_text(exc: Any, name: Callable[[str, tuple[Any, ...]], str] = default_name, limit: int = 3) -> str:
    """A pydantic ``ValidationError`` as one line: ``NAME: problem; NAME: problem`` (the first
    ``limit`` errors); ``name(model, loc)`` says what the user calls a field."""
    errors = exc.errors(include_url=False)
    model = str(getattr(exc, "title", "") or "")
    parts = [f"{name(model, tuple(e.get('loc') or ()))}: {problem(e)}" for e in errors[:limit]]
    if len(errors) > limit:
        parts.append(f"and {len(errors) - limit} more")
    return "; ".join(parts) or "invalid value"


__all__ = ["ReplayError", "default_name", "model_words", "problem", "validation_text"]
