"""The scenario flow: a replay session -> agent definition + scenario. Wiring only:
``tasks.scenario.run_scenario``, one task run per batch of transcripts described."""

from __future__ import annotations

from prefect import flow

from models.settings import load_settings
from tasks.common.runner import PREFECT
from tasks.scenario import run_scenario


@flow(name="scenario", log_prints=True)
def scenario_flow(replay_id: str, agent_name: str, scenario_name: str, data_dir: str | None = None,
                  agent_description: str | None = None, agent_type: str = "text", rows: int = 20,
                  persona_ids: list[str] | None = None, custom_columns: list[str] | None = None,
                  graph_file: str | None = None, generate_graph: bool = True, redact: bool = False,
                  batch: int = 50) -> dict:
    """Generate the scenario of a replay session; transcripts are described in batched tasks."""
    result = run_scenario(
        load_settings(data_dir=data_dir), replay_id, agent_name, scenario_name, runner=PREFECT, batch=batch,
        agent_description=agent_description, agent_type=agent_type, rows=rows, persona_ids=persona_ids,
        custom_columns=custom_columns, graph_file=graph_file, generate_graph=generate_graph, redact=redact)
    print(f"scenario {result.scenario_id}: {result.rows} rows, {result.branches} branches")
    return result.model_dump(mode="json")


if __name__ == "__main__":
    scenario_flow()
