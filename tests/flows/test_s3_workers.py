"""Workers that share no filesystem with the flow: ``REPLAY_DATA_DIR=s3://bucket/prefix`` on a
real S3-compatible server started here (moto, 127.0.0.1), the batches run on 2 Dask workers and
on 2 Ray workers. Each worker writes its batch's parts to the bucket and hands back counts; only
the flow opens the catalog (on this machine). Same chats, scores and metrics as the in-process
run of the same scenario; a batch run again (its worker died after writing) replaces its own
parts; a worker killed in the middle of a batch has that batch run again elsewhere; every chat
once."""

import asyncio
import os
import re
from pathlib import Path

import pytest

from models.settings import load_settings
from models.simulate import RunOptions

pytestmark = pytest.mark.slow

PID_AGENT = f"{Path(__file__).resolve()}:pid_agent"  # imported by path in the workers
DEV_AGENT = "examples.support_agent:agent"  # rule-based, deterministic, calls the recorded tools
BUCKET = "team-lake"


async def pid_agent(input) -> str:
    """Says which process answered."""
    await asyncio.sleep(0.02)
    return f"pid={os.getpid()} turn={input.turn_index}"


@pytest.fixture(scope="module")
def s3():
    """moto's S3 server, its bucket, and its endpoint and keys in this process's environment (the
    local Dask workers and the Ray head started after it inherit them, as a team's workers have
    their own credentials); put back after the module."""
    import s3fs
    from s3_server import s3_server  # tests/support (not at the top: workers import this module by path)

    with s3_server() as server:
        server.make_bucket(BUCKET)
        saved = {k: os.environ.get(k) for k in server.env}
        os.environ.update(server.env)
        s3fs.S3FileSystem.clear_instance_cache()
        try:
            yield server
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            s3fs.S3FileSystem.clear_instance_cache()


@pytest.fixture(scope="module")
def lake(s3, tmp_path_factory):
    """A lake ``s3://BUCKET/team`` with the sample ingested and a scenario of 6 rows: (settings,
    replay id, scenario id). Its catalog dir is REPLAY_CATALOG_DIR (the flow reads it from the
    environment, as a deployment's would); put back after the module."""
    from clusters import sample_scenario

    saved = os.environ.get("REPLAY_CATALOG_DIR")
    os.environ["REPLAY_CATALOG_DIR"] = str(tmp_path_factory.mktemp("catalog"))
    try:
        s = load_settings(data_dir=f"s3://{BUCKET}/team")
        yield (s, *sample_scenario(s, 6))
    finally:
        if saved is None:
            os.environ.pop("REPLAY_CATALOG_DIR", None)
        else:
            os.environ["REPLAY_CATALOG_DIR"] = saved


def _flow(s, scenario_id, replay_id, agent, opts, engine, address=None):
    """The simulate flow on ``engine``; the replay session is marked by the first run only (the
    module's runs share one scenario)."""
    from clusters import run_flow

    return run_flow(s, scenario_id, agent, opts, engine, address)


def _check_same_as_in_process(s, scenario_id, on_cluster, engine, opts):
    from clusters import in_process_outcome, outcome

    assert on_cluster["mode"] == f"prefect-{engine}" and on_cluster["completed_chats"] == 12, str(on_cluster)
    theirs, ours = outcome(s, on_cluster["execution_id"]), in_process_outcome(s, scenario_id, DEV_AGENT, opts)
    assert len(theirs[0]) == 12 and len(theirs[1]) > 12 and len(theirs[2]) > 12
    for name, a, b in zip(("chats", "turns", "scores", "metrics"), theirs, ours, strict=True):
        assert a == b, f"{name} differ between the {engine} run on S3 and the in-process run"


def test_dask_workers_write_to_s3_every_chat_once_and_a_rerun_batch_replaces_its_parts(s3, lake):
    from tasks import scenario
    from tasks.simulate import executor, scale_out
    from tasks.store import catalog

    s, replay_id, scenario_id = lake
    opts = RunOptions(batch_size=4, concurrency=4, repeat=4, retries=0, turn_timeout_s=30)  # 24 chats, 6 batches
    result = _flow(s, scenario_id, replay_id, PID_AGENT, opts, "dask").result()
    assert result["status"] == "completed" and result["total_chats"] == result["completed_chats"] == 24, result
    ex = result["execution_id"]
    with catalog.reader(s) as con:
        answers = [r[0] for r in con.execute("select assistant_message from chat_turns where execution_id = $e",
                                              {"e": ex}).fetchall()]
        assert con.execute("select count(*), count(distinct chat_id) from chats where execution_id = $e",
                           {"e": ex}).fetchone() == (24, 24)
    pids = {int(re.match(r"pid=(\d+) ", a).group(1)) for a in answers}
    assert len(pids) > 1 and os.getpid() not in pids, pids  # written by more than one worker, none here
    keys = s3.keys(BUCKET, f"team/lake/chats/exec={ex}/")
    assert len(keys) == 6 and all(k.endswith(".parquet") for k in keys)  # a part a batch, in the bucket
    assert not list(s.home.rglob("*.parquet"))  # no part on this machine's disk (only the run's lock file)

    # a batch run again (its worker died after writing its parts) replaces its own parts
    with catalog.reader(s) as con:
        _sc, rows, agent_def = scenario.get_scenario(con, scenario_id)
    first = executor.plan(ex, rows, 4)[:4]
    counts = scale_out.run_batch_here(scale_out.shippable_settings(s), ex, scenario_id, PID_AGENT, agent_def,
                                      opts, 0, first, 4)
    assert counts["chats"] == counts["completed"] == 4
    assert s3.keys(BUCKET, f"team/lake/chats/exec={ex}/") == keys
    assert len(executor.finished_chats(s.lake_dir, ex)) == 24

    small = RunOptions(batch_size=4, concurrency=4, repeat=2, retries=0, turn_timeout_s=30)
    _check_same_as_in_process(s, scenario_id, _flow(s, scenario_id, replay_id, DEV_AGENT, small, "dask").result(),
                              "dask", small)


def test_ray_workers_write_to_s3_the_same_chats_scores_and_metrics(s3, lake):
    import clusters

    s, replay_id, scenario_id = lake
    opts = RunOptions(batch_size=4, concurrency=4, repeat=2, retries=0, turn_timeout_s=30)
    with clusters.ray_cluster() as address:  # started after the S3 variables: its workers have them
        on_ray = _flow(s, scenario_id, replay_id, DEV_AGENT, opts, "ray", address).result()
    keys = s3.keys(BUCKET, f"team/lake/chats/exec={on_ray['execution_id']}/")
    assert len(keys) == 3  # 12 chats in batches of 4, a part each
    _check_same_as_in_process(s, scenario_id, on_ray, "ray", opts)


async def slow_pid_agent(input) -> str:
    """Says which process answered, slowly (a batch takes seconds: a worker can be killed in one)."""
    await asyncio.sleep(0.25)
    return f"pid={os.getpid()} turn={input.turn_index}"


def _dask_worker_pids() -> list[int]:
    """The Dask worker processes of the flow's local cluster (spawned children of this process)."""
    import psutil

    return [p.pid for p in psutil.Process().children(recursive=True)
            if "spawn_main" in " ".join(p.cmdline()) and "resource_tracker" not in " ".join(p.cmdline())]


def test_a_killed_dask_worker_s_batch_runs_again_every_chat_once(s3, lake):
    """A Dask worker killed (SIGKILL) in the middle of a batch: Dask runs the batch again on a
    worker, its parts in the bucket are its own (replaced, not added), every chat is there once
    with all its turns."""
    import signal
    import threading

    from tasks.store import catalog

    s, replay_id, scenario_id = lake
    opts = RunOptions(batch_size=6, concurrency=2, repeat=4, retries=0, turn_timeout_s=30)  # 24 chats, 4 batches
    before = set(s3.keys(BUCKET, "team/lake/chats/"))
    killed: list[int] = []
    seen: list[str] = []

    def kill_a_worker_in_the_middle_of_a_batch():
        """Once a batch is written, kill the worker that did not write it (it is in a batch)."""
        import io
        import time

        import pyarrow.parquet as pq

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (done := sorted(set(s3.keys(BUCKET, "team/lake/chats/")) - before)):
            time.sleep(0.1)
        body = s3.client().get_object(Bucket=BUCKET, Key=done[0].replace("/chats/", "/chat_turns/"))["Body"].read()
        wrote = {int(re.match(r"pid=(\d+) ", a).group(1))
                 for a in pq.read_table(io.BytesIO(body)).column("assistant_message").to_pylist()}
        import psutil

        seen.extend(" ".join(c.cmdline())[:150] for c in psutil.Process().children(recursive=True))
        busy = [pid for pid in _dask_worker_pids() if pid not in wrote]
        if busy:
            os.kill(busy[0], signal.SIGKILL)
            killed.append(busy[0])

    def killer_thread():
        try:
            kill_a_worker_in_the_middle_of_a_batch()
        except Exception as exc:  # noqa: BLE001 - said by the assertion below
            seen.append(f"the killer failed: {exc!r}")

    killer = threading.Thread(target=killer_thread, daemon=True)
    killer.start()
    result = _flow(s, scenario_id, replay_id, f"{Path(__file__).resolve()}:slow_pid_agent", opts, "dask").result()
    killer.join(5)
    assert killed, f"no Dask worker was found to kill: {seen}"
    assert result["status"] == "completed" and result["completed_chats"] == 24, result
    ex = result["execution_id"]
    with catalog.reader(s) as con:
        assert con.execute("select count(*), count(distinct chat_id) from chats where execution_id = $e",
                           {"e": ex}).fetchone() == (24, 24)
        n, distinct = con.execute("select count(*), count(distinct (chat_id, turn_index)) from chat_turns "
                                  "where execution_id = $e", {"e": ex}).fetchone()
        expected = con.execute("select sum(len(user_turns)) * 4 from scenario_rows where scenario_id = $s",
                               {"s": scenario_id}).fetchone()[0]
    assert n == distinct == expected
    assert len(s3.keys(BUCKET, f"team/lake/chats/exec={ex}/")) == 4  # a part a batch, none twice
    with catalog.reader(s) as con:
        pids = {int(re.match(r"pid=(\d+) ", a).group(1)) for (a,) in con.execute(
            "select assistant_message from chat_turns where execution_id = $e", {"e": ex}).fetchall()}
    assert killed[0] not in pids, (killed, pids)  # what it had done of its batch was done again elsewhere
