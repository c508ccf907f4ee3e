"""The simulate flow on a real (temporary) Prefect server: one task run per BATCH of chats,
one concurrency limit, the same results as in-process."""

import asyncio

from models.settings import SAMPLES_DIR, load_settings
from models.simulate import RunOptions


def test_simulate_flow_maps_over_batches(tmp_path):
    from prefect.client.orchestration import get_client

    from flows.simulate import simulate_flow
    from tasks import scenario
    from tasks.ingest import run_ingest
    from tasks.scenario import replays
    from tasks.store import catalog

    s = load_settings(data_dir=tmp_path / "d")
    run_ingest(s, paths=[SAMPLES_DIR / "otlp"])
    with catalog.writer(s) as con:
        rs = replays.create(con, "support-agent", "session", select_all=True)
        sc = scenario.generate(con, s, rs["replay_id"], "bot", "s", rows=12)
    result = asyncio.run(simulate_flow(scenario_id=sc["scenario_id"], agent_ref="examples.support_agent:oracle",
                                       options=RunOptions(batch_size=5, concurrency=4, repeat=2),
                                       replay_id=rs["replay_id"], data_dir=str(s.data_dir)))
    assert result["mode"] == "prefect" and result["status"] == "completed" and result["completed_chats"] == 24

    async def task_runs():
        async with get_client() as client:
            return await client.read_task_runs()

    batches = [t for t in asyncio.run(task_runs()) if t.name.startswith("simulate-batch")]
    assert len(batches) == 5  # 24 chats in batches of 5
    # scored after the execution, the metrics published as artifacts (a table and a markdown summary)
    assert result["metrics"]["avg_ground_truth_match"] == 100.0

    async def artifacts():
        async with get_client() as client:
            return await client.read_artifacts()

    keys = {a.key for a in asyncio.run(artifacts())}
    ex = result["execution_id"].replace("_", "-")
    assert f"metrics-{ex}" in keys and f"metrics-{ex}-summary" in keys
