"""Scenario: a replay session (what to replay) -> an agent definition and scenario rows."""

from tasks.scenario.scenarios import (
    ScenarioError,
    describe_task,
    export_scenario,
    generate,
    get_scenario,
    import_scenario,
    load_transcripts,
    store_scenario,
)

__all__ = ["ScenarioError", "describe_task", "export_scenario", "generate", "get_scenario", "import_scenario",
           "load_transcripts", "store_scenario"]
