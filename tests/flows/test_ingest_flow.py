"""The ingest flow on a real (temporary) Prefect server: same result as the in-process path."""

from models.settings import SAMPLES_DIR, load_settings


def test_ingest_flow_matches_in_process(tmp_path, query):
    from flows.ingest import ingest_flow
    from flows.local import ingest_local
    from tasks import catalog

    flow_dir, local_dir = tmp_path / "flow", tmp_path / "local"
    result = ingest_flow(paths=[str(SAMPLES_DIR / "otlp")], data_dir=str(flow_dir))
    assert result["mode"] == "prefect" and result["ingested"] > 0 and result["sessions"] > 0
    local = ingest_local(load_settings(data_dir=local_dir), paths=[SAMPLES_DIR / "otlp"])
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
