"""How the CLI names a value pydantic refused: by its flag (``replay run``'s options) or its
environment variable (the settings), with what it accepts — one line, never pydantic's text.

``replay run --tools recroded`` -> ``--tools: 'recroded' is not one of recorded, live``;
``REPLAY_WORKERS=-1`` -> ``REPLAY_WORKERS: must be at least 0 (got '-1')``.
"""

from __future__ import annotations

from typing import Any

from tasks.common.errors import default_name, validation_text

# RunOptions fields whose flag is not "--" + the field's name with dashes
RUN_FLAGS = {"tool_mode": "--tools", "turn_timeout_s": "--turn-timeout"}
SETTINGS_NAMES = {"data_dir": "--data-dir (REPLAY_DATA_DIR)", "prefect_api_url": "PREFECT_API_URL"}


def field_name(model: str, loc: tuple[Any, ...]) -> str:
    """What the user calls a field: a ``replay run`` flag, a ``REPLAY_*`` variable, else the
    model's name in words and the field's path (``agent definition: tools.0.name``)."""
    head = str(loc[0]) if loc else ""
    if model == "RunOptions" and head:
        flag = RUN_FLAGS.get(head, "--" + head.replace("_", "-"))
        rest = ".".join(str(x) for x in loc[1:])
        return f"{flag} {rest}".strip()
    if model == "Settings" and head:
        return SETTINGS_NAMES.get(head, f"REPLAY_{head.upper()}")
    return default_name(model, loc)


def validation_message(exc: Any) -> str:
    """A pydantic ``ValidationError`` reaching the CLI, as one line in the user's terms."""
    return validation_text(exc, field_name)


__all__ = ["RUN_FLAGS", "field_name", "validation_message"]
