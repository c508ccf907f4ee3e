"""The scenario flow: a replay session -> agent definition + scenario. Composition only.

Transcripts are described in batches (one task per batch of ``batch`` conversations, never
one per row); the catalog writes happen once, in the generate step.
"""

from __future__ import annotations

from prefect import flow

from models.settings import load_settings
from tasks import scenario
from tasks.store import catalog


@flow(name="scenario", log_prints=True)
def scenario_flow(replay_id: str, agent_name: str, scenario_name: str, data_dir: str | None = None,
                  agent_description: str | None = None, agent_type: str = "text", rows: int = 20,
                  persona_ids: list[str] | None = None, custom_columns: list[str] | None = None,
                  graph_file: str | None = None, generate_graph: bool = True, redact: bool = False,
                  batch: int = 50) -> dict:
    """Generate the scenario of a replay session; transcripts are described in batched tasks."""
    settings = load_settings(data_dir=data_dir)
    describe = scenario.describe_task()

    def describe_batched(transcripts):
        futures = [describe.submit(transcripts[i:i + batch], settings) for i in range(0, len(transcripts), batch)]
        return [item for f in futures for item in f.result()]

    with catalog.writer(settings) as con:
        result = scenario.generate(
            con, settings, replay_id, agent_name=agent_name, scenario_name=scenario_name,
            agent_description=agent_description, agent_type=agent_type, rows=rows, persona_ids=persona_ids,
            custom_columns=custom_columns, graph_file=graph_file, generate_graph=generate_graph, redact=redact,
            describe=describe_batched)
    print(f"scenario {result['scenario_id']}: {result['rows']} rows, {result['branches']} branches")
    return result


if __name__ == "__main__":
    scenario_flow()
