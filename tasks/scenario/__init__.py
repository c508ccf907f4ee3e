"""Scenario: a replay session (what to replay) -> an agent definition and scenario rows.

``replays`` (replay sessions and their states), ``scenarios`` (generation, storage, export and
import), the writers of a row's text (``writer_offline``, ``writer_llm``), ``graph`` (the
conversation graph), ``redact``; ``stage`` composes them once (``run_scenario``)."""

from tasks.scenario.scenarios import ScenarioError, export_scenario, generate, get_scenario, import_scenario
from tasks.scenario.stage import check_scenario, run_scenario, select_sessions

__all__ = ["ScenarioError", "check_scenario", "export_scenario", "generate", "get_scenario", "import_scenario",
           "run_scenario", "select_sessions"]
