"""The scenario flow on a real (temporary) Prefect server: transcripts described in batched
tasks (one task per batch, not per row), same result shape as the in-process path."""

from models.settings import SAMPLES_DIR, load_settings


def test_scenario_flow_batches_the_transcripts(tmp_path):
    import asyncio

    from prefect.client.orchestration import get_client

    from flows.scenario import scenario_flow
    from tasks.ingest import run_ingest
    from tasks.scenario import replays
    from tasks.store import catalog

    s = load_settings(data_dir=tmp_path / "d")
    run_ingest(s, paths=[SAMPLES_DIR / "otlp"])
    with catalog.writer(s) as con:
        rs = replays.create(con, "support-agent", "session", select_all=True)
    result = scenario_flow(replay_id=rs["replay_id"], agent_name="bot", scenario_name="flow", rows=12,
                           data_dir=str(s.data_dir), batch=5)
    assert result["rows"] == 12 and result["transcripts"] == 12 and result["state"] == "GENERATING"

    async def task_runs():
        async with get_client() as client:
            return await client.read_task_runs()

    names = [t.name for t in asyncio.run(task_runs()) if t.name.startswith("describe-transcripts")]
    assert len(names) == 3  # 12 transcripts in batches of 5
