"""The scenario stage, composed once: a replay session -> agent definition + scenario.

``run_scenario`` is what ``replay scenarios generate``, the scenario flow, the nightly flow
and the demo call. Transcripts are described in batches (one step per batch of ``batch``
conversations, never one per row: with a model, each batch is one task run of the flow),
with the catalog closed: it is open (and other processes wait) only for the short writes
before (:func:`~tasks.scenario.scenarios.begin_generation`) and after
(:func:`~tasks.scenario.scenarios.finish_generation`).
"""

from __future__ import annotations

from typing import Any

from models.scenario import ConversationNotes, GenerationFailure, ReplaySession, ScenarioInfo, Transcript
from models.settings import Settings
from tasks.common.runner import IN_PROCESS, Runner
from tasks.scenario import replays
from tasks.scenario.scenarios import (
    begin_generation,
    describe_batch,
    fail_generation,
    finish_generation,
    get_scenario,
)
from tasks.store import catalog

Described = list[tuple[ConversationNotes, GenerationFailure | None]]


def run_scenario(settings: Settings, replay_id: str, agent_name: str, scenario_name: str, *,
                 runner: Runner = IN_PROCESS, batch: int = 50, **options: Any) -> ScenarioInfo:
    """The agent definition and the scenario of a replay session. ``options``: those of
    :func:`tasks.scenario.scenarios.generate` (rows, persona_ids, custom_columns, graph_file,
    generate_graph, redact, agent_description, agent_type)."""

    def describe(transcripts: list[Transcript]) -> Described:
        jobs = [(transcripts[i:i + batch], settings) for i in range(0, len(transcripts), batch)]
        parts = runner.map(describe_batch, jobs, name="describe-transcripts", retries=1)
        return [item for part in parts for item in part]

    with catalog.writer(settings) as con:
        gen = begin_generation(con, settings, replay_id, agent_name, scenario_name, **options)
    try:  # the model's calls, with the catalog closed: readers and other writers go on meanwhile
        described = describe(gen.transcripts)
    except Exception as exc:
        with catalog.writer(settings) as con:
            fail_generation(con, replay_id, exc)
        raise
    with catalog.writer(settings) as con:
        return finish_generation(con, settings, gen, described)


def select_sessions(settings: Settings, project: str, where: str) -> ReplaySession | None:
    """A replay session (INIT) over the project's sessions that ``where`` keeps; None when it
    keeps none (nothing new to replay is not a failure)."""
    with catalog.writer(settings) as con:
        return replays.create_selection(con, project, where)


def check_scenario(settings: Settings, scenario_id: str) -> None:
    """ScenarioError (one line) when there is no such scenario."""
    with catalog.reader(settings) as con:
        get_scenario(con, scenario_id)


__all__ = ["check_scenario", "run_scenario", "select_sessions"]
