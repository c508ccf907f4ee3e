"""The ingest flow on a real (temporary) Prefect server: same result as the in-process path."""

from models.settings import SAMPLES_DIR, load_settings


def test_ingest_flow_matches_in_process(tmp_path, query):
    from flows.ingest import ingest_flow
    from tasks.ingest import run_ingest
    from tasks.store import catalog

    flow_dir, local_dir = tmp_path / "flow", tmp_path / "local"
    result = ingest_flow(paths=[str(SAMPLES_DIR / "otlp")], data_dir=str(flow_dir))
    assert result["mode"] == "prefect" and result["ingested"] > 0 and result["sessions"] > 0
    local = run_ingest(load_settings(data_dir=local_dir), paths=[SAMPLES_DIR / "otlp"])
    assert (local.read, local.ingested, local.rejected, local.duplicates, local.sessions, local.turns) == (
        result["read"], result["ingested"], result["rejected"], result["duplicates"], result["sessions"],
        result["turns"])
    q = ("select session_id, turn_index, trace_id, user_message, assistant_message, tool_calls::varchar "
         "from turns order by all")
    rows = {}
    for d in (flow_dir, local_dir):
        with catalog.reader(load_settings(data_dir=d)) as con:
            rows[d] = catalog.run_read_only(con, q)[1]
    assert rows[flow_dir] == rows[local_dir]


def test_cli_runs_the_flow_on_the_configured_server(tmp_path):
    """With PREFECT_API_URL set, `replay ingest` runs the ingest flow on that server (and the
    run is recorded there); without it, the same stages run in-process."""
    import json
    import os
    import subprocess
    import sys

    from prefect.settings import PREFECT_API_URL

    api = PREFECT_API_URL.value()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPLAY_")}
    env["PREFECT_API_URL"] = api
    r = subprocess.run([sys.executable, "-m", "replay.cli", "--data-dir", str(tmp_path / "d"), "--json",
                        "ingest", str(SAMPLES_DIR / "otlp")], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["mode"] == "prefect" and info["sessions"] == 12

    import asyncio

    from prefect.client.orchestration import get_client

    async def runs():
        async with get_client() as client:
            return await client.read_flow_runs()

    names = {fr.name for fr in asyncio.run(runs())}
    assert names  # the flow run is on the server
