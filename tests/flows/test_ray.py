"""The simulate flow with the ray task runner (prefect-ray): a Ray cluster started here with
``ray start --head`` on the loopback (two CPUs: two worker processes at a time), the batches run
in Ray worker processes, each writes its own parts to the lake; every chat once, and the same
chats, scores and metrics as the in-process run of the same scenario."""

import asyncio
import os
import re
from pathlib import Path

import pytest

from models.settings import load_settings
from models.simulate import RunOptions

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve()
PID_AGENT = f"{HERE}:pid_agent"  # imported by path in the workers
DEV_AGENT = "examples.support_agent:agent"  # rule-based, deterministic, calls the recorded tools


async def pid_agent(input) -> str:
    """Says which process answered."""
    await asyncio.sleep(0.02)
    return f"pid={os.getpid()} turn={input.turn_index}"


@pytest.fixture(scope="module")
def ray_cluster():
    """A Ray head of two CPUs on 127.0.0.1, token authentication on (``clusters.ray_cluster``)."""
    import clusters  # tests/support (not at the top: the Ray workers import this module by path)

    with clusters.ray_cluster() as address:
        yield address


def _scenario(s, rows: int):
    from clusters import sample_scenario

    return sample_scenario(s, rows)


def _flow(s, scenario_id, replay_id, agent, opts, address):
    from clusters import run_flow

    return run_flow(s, scenario_id, agent, opts, "ray", address, replay_id)


def test_ray_runner_ships_batches_to_worker_processes(tmp_path, ray_cluster):
    from tasks.store import catalog

    s = load_settings(data_dir=tmp_path / "d")
    replay_id, scenario_id = _scenario(s, 12)
    opts = RunOptions(batch_size=8, concurrency=8, repeat=4, retries=0, turn_timeout_s=30)
    state = _flow(s, scenario_id, replay_id, PID_AGENT, opts, ray_cluster)
    result = state.result()
    assert result["status"] == "completed" and result["mode"] == "prefect-ray", result
    assert result["total_chats"] == result["completed_chats"] == 48 and result["failed_chats"] == 0

    ex = result["execution_id"]
    with catalog.reader(s) as con:
        chats = con.execute("select chat_id, status from chats where execution_id = $e", {"e": ex}).fetchall()
        answers = [r[0] for r in con.execute("select assistant_message from chat_turns where execution_id = $e",
                                              {"e": ex}).fetchall()]
        expected_turns = con.execute("select sum(len(user_turns)) * 4 from scenario_rows where scenario_id = $s",
                                     {"s": scenario_id}).fetchone()[0]
    # every chat exactly once, completed, with all its turns
    assert len(chats) == 48 and len({c[0] for c in chats}) == 48
    assert all(c[1] == "completed" for c in chats)
    assert len(answers) == expected_turns
    pids = {int(re.match(r"pid=(\d+) ", a).group(1)) for a in answers}
    assert len(pids) > 1, pids  # the batches ran in more than one Ray worker process...
    assert os.getpid() not in pids  # ...and none in the flow's process

    from clusters import task_runs

    runs = task_runs(state.state_details.flow_run_id, "simulate-ray-batch")
    assert len(runs) == 6 and all(t.state.is_completed() for t in runs)  # 48 chats in batches of 8


def test_ray_run_gives_the_in_process_chats_scores_and_metrics(tmp_path, ray_cluster):
    from clusters import in_process_outcome, outcome

    s = load_settings(data_dir=tmp_path / "d")
    replay_id, scenario_id = _scenario(s, 6)
    opts = RunOptions(batch_size=4, concurrency=4, repeat=2, retries=0, turn_timeout_s=30)
    on_ray = _flow(s, scenario_id, replay_id, DEV_AGENT, opts, ray_cluster).result()
    assert on_ray["mode"] == "prefect-ray" and on_ray["completed_chats"] == 12, str(on_ray)

    ray_out, here_out = outcome(s, on_ray["execution_id"]), in_process_outcome(s, scenario_id, DEV_AGENT, opts)
    assert len(ray_out[0]) == 12 and len(ray_out[1]) > 12 and len(ray_out[2]) > 12
    for name, a, b in zip(("chats", "turns", "scores", "metrics"), ray_out, here_out, strict=True):
        assert a == b, f"{name} differ between the Ray run and the in-process run"
