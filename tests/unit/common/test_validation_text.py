"""A value pydantic refused, in the user's terms (tasks/common/errors.py, replay/options.py):
the flag or variable, what it accepts, what it got; never pydantic's own text."""

import re

import pytest
from pydantic import BaseModel, ValidationError, field_validator

from models.settings import Settings
from models.simulate import RunOptions
from replay.options import validation_message
from tasks.common.errors import validation_text

PYDANTIC = re.compile(r"validation error|type=|errors.pydantic.dev|Input should|RunOptions|Settings")


def refused(cls, **values) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        cls(**values)
    return info.value


@pytest.mark.parametrize("values, line", [
    ({"tool_mode": "recroded"}, "--tools: 'recroded' is not one of recorded, live"),
    ({"mode": "x"}, "--mode: 'x' is not one of replay, simulate, hybrid"),
    ({"turn_timeout_s": 0}, "--turn-timeout: must be greater than 0 (got 0)"),
    ({"concurrency": "many"}, "--concurrency: must be a whole number (got 'many')"),
    ({"max_failure_rate": 2.0}, "--max-failure-rate: must be at most 1 (got 2.0)"),
    ({"tool_match": {"trajectory": "sideways"}},
     "--tool-match trajectory: 'sideways' is not one of strict, unordered, subset, superset"),
])
def test_run_options_are_named_by_their_flags(values, line):
    text = validation_message(refused(RunOptions, **values))
    assert text == line and not PYDANTIC.search(text)


def test_settings_are_named_by_their_variables_and_at_most_three_errors_are_told():
    text = validation_message(refused(Settings, workers=-1, task_runner="spark", batch_rows=1, lock_timeout_s=-1))
    assert text == ("REPLAY_BATCH_ROWS: must be at least 100 (got 1); REPLAY_WORKERS: must be at least 0 (got -1); "
                    "REPLAY_LOCK_TIMEOUT_S: must be at least 0 (got -1); and 1 more")


class AgentThing(BaseModel):
    name: str
    tools: list[dict]

    @field_validator("name")
    @classmethod
    def no_spaces(cls, v):
        if " " in v:
            raise ValueError("no spaces in a name")
        return v


def test_other_models_are_named_in_words_with_the_field_path():
    text = validation_text(refused(AgentThing, name="a b", tools=[{}, 3]))
    assert text == "agent thing: name: no spaces in a name; agent thing: tools.1: must be an object (got 3)"
    assert validation_text(refused(AgentThing, tools=[])) == "agent thing: name: is required"
