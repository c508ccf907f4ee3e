"""Mask personal data in scenario text before it reaches the lake or an export.

Pure. ``Redactor(patterns)`` replaces, in this order:
1. each configured named pattern (``{"order_id": r"\\bA\\d{4}\\b"}`` -> ``[ORDER_ID]``);
2. e-mail addresses -> ``[EMAIL]``;
3. card numbers -> ``[CARD]``: 13-19 digits, optionally grouped by spaces or dashes, that pass
   the Luhn check (other long digit runs, like tracking numbers, stay);
4. phone numbers -> ``[PHONE]``: 7-15 digits written with a leading "+" or grouped by spaces,
   dots, dashes or a "(area)" part; 10-15 digits when written as one plain run. Never: dates
   (2026-11-20, 20.11.2026), IP addresses, digits glued to letters (A1042, 1Z84A0X7...) or
   numbers under 7 digits.
``counts`` holds how many of each kind were masked, ``total`` their sum.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

EMAIL = re.compile(r"[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
CARD = re.compile(r"(?<![\w.+-])\d(?:[ -]?\d){12,18}(?![\w-])")
PHONE = re.compile(r"(?<![\w.+/-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?"  # +country, (area)
                   r"\d{1,5}(?:[ .-]?\d{2,5}){0,5}(?![\w/-]|\.\d)")
NOT_PHONE = [re.compile(p) for p in (
    r"^\d{4}[-./]\d{1,2}[-./]\d{1,2}$",  # 2026-11-20
    r"^\d{1,2}[-./]\d{1,2}[-./]\d{2,4}$",  # 20.11.2026, 11/20/26
    r"^\d{1,3}(\.\d{1,3}){3}$",  # 192.168.1.10
)]


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _is_card(text: str) -> bool:
    digits = re.sub(r"\D", "", text)
    return 13 <= len(digits) <= 19 and luhn_ok(digits)


def _is_phone(text: str) -> bool:
    digits = re.sub(r"\D", "", text)
    if any(rx.match(text) for rx in NOT_PHONE):
        return False
    groups = re.findall(r"\d+", text)
    if all(len(g) <= 2 for g in groups) and not text.startswith(("+", "0")):
        return False  # "36 37 38 39 40": a list of small numbers, not "+33 1 23 45 67 89"
    grouped = text.startswith("+") or "(" in text or not text.isdigit()
    return 7 <= len(digits) <= 15 if grouped else 10 <= len(digits) <= 15


class Redactor:
    def __init__(self, patterns: dict[str, str] | None = None):
        rules: list[tuple[str, re.Pattern[str], Any]] = [
            (name, re.compile(rx), None) for name, rx in (patterns or {}).items()]
        rules += [("email", EMAIL, None), ("card", CARD, _is_card), ("phone", PHONE, _is_phone)]
        self.rules = rules
        self.counts: dict[str, int] = {name: 0 for name, _, _ in rules}

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def redact(self, text: str) -> str:
        for name, rx, check in self.rules:
            def mask(m: re.Match[str], name: str = name, check: Any = check) -> str:
                if check is not None and not check(m.group(0)):
                    return m.group(0)
                self.counts[name] += 1
                return f"[{name.upper()}]"

            text = rx.sub(mask, text)
        return text

    def redact_obj(self, obj: Any) -> Any:
        """Strings masked, dicts (values) and lists walked, pydantic models rebuilt, the rest kept."""
        if isinstance(obj, str):
            return self.redact(obj)
        if isinstance(obj, dict):
            return {k: self.redact_obj(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [self.redact_obj(v) for v in obj]
        if isinstance(obj, BaseModel):
            return type(obj).model_validate(self.redact_obj(obj.model_dump(by_alias=True)))
        return obj
