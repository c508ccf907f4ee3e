"""What every stage result shares."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class Record(BaseModel):
    """A stage's typed result. ``result["field"]`` and ``result.get("field")`` read the same
    fields as ``result.field`` (scripts written against the earlier dict results keep working);
    ``model_dump(mode="json")`` is what ``--json`` prints."""

    def __getitem__(self, key: str) -> Any:
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)


class ConversationTurn(BaseModel):
    """What a turn of a conversation is, in production or in a replay: the user's message, the
    agent's answer, and what it cost."""

    turn_index: int
    user_message: str | None = None
    assistant_message: str | None = None
    latency_ms: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    error: str | None = None


__all__ = ["ConversationTurn", "Record"]
