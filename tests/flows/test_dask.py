"""The simulate flow with the dask task runner: batches run in Dask worker processes (a local
cluster of two workers on the loopback), each worker runs its whole batch and writes its parts
to the shared lake; every chat completed exactly once, in more than one process."""

import asyncio
import os
import re
import time
from pathlib import Path

from models.settings import SAMPLES_DIR, load_settings
from models.simulate import RunOptions

PID_AGENT = f"{Path(__file__).resolve()}:pid_agent"  # imported by path in the workers


async def pid_agent(input) -> str:
    """The agent under test: says which process answered."""
    await asyncio.sleep(0.02)
    return f"pid={os.getpid()} turn={input.turn_index}"


def test_dask_runner_ships_batches_to_worker_processes(tmp_path):
    from flows.simulate import simulate_flow
    from tasks import scenario
    from tasks.ingest import run_ingest
    from tasks.scenario import replays
    from tasks.simulate import scale_out
    from tasks.store import catalog

    s = load_settings(data_dir=tmp_path / "d")
    run_ingest(s, paths=[SAMPLES_DIR / "otlp"])
    with catalog.writer(s) as con:
        rs = replays.create(con, "support-agent", "session", select_all=True)
        sc = scenario.generate(con, s, rs["replay_id"], "bot", "s", rows=12)
    opts = RunOptions(batch_size=8, concurrency=8, repeat=4, retries=0, turn_timeout_s=30)
    t0 = time.perf_counter()
    state = asyncio.run(simulate_flow(scenario_id=sc["scenario_id"], agent_ref=PID_AGENT, options=opts,
                                      replay_id=rs["replay_id"], data_dir=str(s.data_dir), task_runner="dask",
                                      return_state=True))
    seconds = time.perf_counter() - t0
    result = state.result()
    assert result["status"] == "completed" and result["mode"] == "prefect-dask", result
    assert result["total_chats"] == result["completed_chats"] == 48 and result["failed_chats"] == 0
    assert seconds < 60, f"the dask run took {seconds:.1f} s"

    ex = result["execution_id"]
    with catalog.reader(s) as con:
        chats = con.execute("select chat_id, status, turn_count from chats where execution_id = $e",
                            {"e": ex}).fetchall()
        answers = [r[0] for r in con.execute("select assistant_message from chat_turns where execution_id = $e",
                                              {"e": ex}).fetchall()]
        expected_turns = con.execute("select sum(len(user_turns)) * 4 from scenario_rows where scenario_id = $s",
                                     {"s": sc["scenario_id"]}).fetchone()[0]
    # every chat exactly once, completed, with all its turns
    assert len(chats) == 48 and len({c[0] for c in chats}) == 48
    assert all(c[1] == "completed" for c in chats)
    assert len(answers) == expected_turns
    pids = {int(re.match(r"pid=(\d+) ", a).group(1)) for a in answers}
    assert len(pids) > 1, pids  # the batches ran in more than one worker process...
    assert os.getpid() not in pids  # ...and none in the flow's process

    from clusters import task_runs  # tests/support (not at the top: the workers import this module by path)

    runs = task_runs(state.state_details.flow_run_id, "simulate-dask-batch")
    assert len(runs) == 6 and all(t.state.is_completed() for t in runs)  # 48 chats in batches of 8

    # a batch that Dask runs again (its worker died after writing) replaces its own parts
    with catalog.reader(s) as con:
        _sc, rows, agent_def = scenario.get_scenario(con, sc["scenario_id"])
    from tasks.simulate import executor as simulate

    first = simulate.plan(ex, rows, 4)[:8]
    counts = scale_out.run_batch_here(scale_out.shippable_settings(s), ex, sc["scenario_id"], PID_AGENT, agent_def,
                                      opts, 0, first, 4)
    assert counts["chats"] == counts["completed"] == 8
    assert len(simulate.finished_chats(s.lake_dir, ex)) == 48
    with catalog.reader(s) as con:
        assert con.execute("select count(*), count(distinct chat_id) from chats where execution_id = $e",
                           {"e": ex}).fetchone() == (48, 48)


def test_concurrency_split_and_no_secrets_shipped():
    from pydantic import SecretStr

    from tasks.simulate import scale_out

    assert [scale_out.per_slot_concurrency(c, 2) for c in (1, 5, 32, 256)] == [1, 3, 16, 128]
    assert scale_out.per_slot_concurrency(7, 0) == 7
    s = load_settings(llm_api_key="sk-secret", agent_api_key="k2")
    shipped = scale_out.shippable_settings(s)
    assert "data_dir" in shipped and not any(isinstance(v, SecretStr) for v in shipped.values())
    assert "llm_api_key" not in shipped and "agent_api_key" not in shipped
    assert scale_out.LOCAL_CLUSTER["host"] == "127.0.0.1" and scale_out.LOCAL_CLUSTER["dashboard_address"] is None
