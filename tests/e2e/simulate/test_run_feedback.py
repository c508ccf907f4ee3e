"""What `replay run` tells its user (issue 12), through the real entry point: why chats failed
(grouped reasons, an example chat each, in --json too), what Ctrl-C leaves and how to finish it,
a refusal before anything is written, option errors in flags' terms, and progress chat by chat
(a line every few seconds without a terminal, a rich bar on one)."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shlex
import shutil
import signal
import socket
import subprocess
import threading

import pytest
from cli_helpers import (
    ROOT,
    assert_one_line_error,
    finish,
    replay,
    replay_all,
    replay_cmd,
    replay_env,
    sample_scenario,
    wait_for,
)

SUPPORT = str(ROOT / "tests" / "support")
ROWS = 12  # the sample's sessions: one row each


@pytest.fixture(scope="module")
def scenario_dir(tmp_path_factory):
    """The sample ingested and a scenario of its 12 sessions, made once; each test copies it."""
    d = tmp_path_factory.mktemp("feedback") / "d"
    sc = sample_scenario(d, ROWS)
    return d, sc["scenario_id"]


@pytest.fixture
def data(scenario_dir, tmp_path):
    """(a copy of the data dir, its scenario id)."""
    src, scenario_id = scenario_dir
    d = tmp_path / "d"
    shutil.copytree(src, d)
    return d, scenario_id


def sql(d, query: str) -> list[dict]:
    r = replay(d, "sql", query, "--format", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def agents_env(**extra: str) -> dict[str, str]:
    return replay_env(PYTHONPATH=SUPPORT, **extra)


# --------------------------------------------------------------------------- failure reasons
def test_a_failed_run_says_why_its_chats_failed(data):
    """agents_lib:explodes fails 10 of 12 chats: 8 with "agent exploded on turn 0|1", 2 with a
    LookupError naming an order and a session. stderr groups them (numbers and ids masked) with
    counts and an example chat; --json carries the same; exit 1. `runs resume` of the failed
    execution says the same."""
    d, scenario_id = data
    r = replay(d, "--json", "run", "--scenario", scenario_id, "--agent", "agents_lib:explodes", env=agents_env())
    assert r.returncode == 1, r.stderr
    info = json.loads(r.stdout)
    ex = info["execution_id"]
    assert (info["status"], info["failed_chats"]) == ("failed", 10)
    assert info["errors"] == [
        {"reason": "RuntimeError: agent exploded on turn <n>", "count": 8, "example_chat_id": f"{ex}-r0000-k000"},
        {"reason": "LookupError: no order <id> for session <id>", "count": 2, "example_chat_id": f"{ex}-r0008-k000"}]
    # what the chats keep is the whole error; the reasons group errors that differ
    raw = {row["error"] for row in sql(d, f"select error from chats where execution_id = '{ex}' and status = 'failed'")}
    assert {"RuntimeError: agent exploded on turn 0", "RuntimeError: agent exploded on turn 1"} <= raw
    lines = r.stderr.splitlines()
    print("\n".join(lines))
    assert "replay: 10 of 12 chats failed; by reason:" in lines
    assert f"  8 x RuntimeError: agent exploded on turn <n>   (e.g. {ex}-r0000-k000)" in lines
    assert f"  2 x LookupError: no order <id> for session <id>   (e.g. {ex}-r0008-k000)" in lines
    last = lines[-1]
    assert last.startswith(f"replay: error: execution {ex} failed: 10 of 12 chats failed, most often "
                           "RuntimeError: agent exploded on turn <n> (8);")
    assert f"replay --data-dir {d} sql \"select chat_id, error from chats where execution_id = '{ex}'" in last
    assert "Traceback" not in r.stderr
    # the stored error says it too (what `replay sql "select * from executions"` shows)
    (row,) = sql(d, f"select status, error from executions where execution_id = '{ex}'")
    assert row["status"] == "failed" and "most often 8 x RuntimeError: agent exploded on turn <n>" in row["error"]

    plain = replay(d, "runs", "resume", ex, env=agents_env())
    assert plain.returncode == 1
    assert f"  8 x RuntimeError: agent exploded on turn <n>   (e.g. {ex}-r0000-k000)" in plain.stderr.splitlines()
    assert plain.stderr.splitlines()[-1].startswith(f"replay: error: execution {ex} failed: 10 of 12 chats failed")


def test_a_completed_run_with_failed_chats_lists_them_and_exits_0(data):
    d, scenario_id = data
    r = replay(d, "--json", "run", "--scenario", scenario_id, "--agent", "agents_lib:explodes",
               "--max-failure-rate", "0.9", env=agents_env())
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["status"] == "completed" and [e["count"] for e in info["errors"]] == [8, 2]
    assert "replay: 10 of 12 chats failed; by reason:" in r.stderr
    assert "replay: error" not in r.stderr


# --------------------------------------------------------------------------- Ctrl-C
def start_interruptible(d, args, env, logs):
    """``replay`` as a user's shell starts it: SIGINT at its default (a test runner may have
    inherited it ignored, and Python leaves an ignored SIGINT ignored)."""
    out, err = open(logs.with_suffix(".out"), "wb"), open(logs.with_suffix(".err"), "wb")
    p = subprocess.Popen(replay_cmd(d, args), stdout=out, stderr=err, env=env, cwd=ROOT,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    out.close()
    err.close()
    return p


def test_ctrl_c_says_what_was_done_and_how_to_finish(data, tmp_path):
    d, scenario_id = data
    env = agents_env(SLOW_AGENT_S="0.15")
    p = start_interruptible(d, ["--json", "run", "--scenario", scenario_id, "--agent", "agents_lib:slow",
                                "--repeat", "5", "--batch-size", "6", "--concurrency", "3"], env, tmp_path / "run")
    chats = d / "lake" / "chats"
    assert wait_for(lambda: len(list(chats.glob("exec=*/*.parquet"))) >= 2, timeout=60)
    p.send_signal(signal.SIGINT)
    assert p.wait(timeout=60) == 130
    out, err = (tmp_path / "run.out").read_text(), (tmp_path / "run.err").read_text()
    print(err)
    info = json.loads(out)  # one object
    ex = info["execution_id"]
    assert info["interrupted"] is True and info["status"] == "interrupted" and info["total_chats"] == 60
    assert 12 <= info["done_chats"] < 60 and info["done_chats"] == info["completed_chats"] + info["failed_chats"]
    resume = f"replay --data-dir {d} runs resume {ex}"
    assert info["resume_command"] == resume == info["next"]
    assert err.splitlines()[-1] == (f"replay: error: interrupted: execution {ex}: {info['done_chats']} of 60 chats "
                                    f"done and kept; finish it with: {resume}")
    assert "Traceback" not in err
    (row,) = sql(d, f"select status, completed_chats + failed_chats done from executions where execution_id = '{ex}'")
    assert row == {"status": "interrupted", "done": info["done_chats"]}

    # the command it printed finishes it: only what was not kept runs
    kept = sql(d, f"select count(*) n from chats where execution_id = '{ex}'")[0]["n"]
    r = subprocess.run([*replay_cmd(None, shlex.split(resume)[1:]), "--json"], capture_output=True, text=True,
                       env=agents_env(SLOW_AGENT_S="0.01"), cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    done = json.loads(r.stdout)
    assert done["status"] == "completed" and done["completed_chats"] == 60 and done["ran_now"] == 60 - kept
    assert sql(d, f"select count(distinct chat_id) n from chats where execution_id = '{ex}'")[0]["n"] == 60


# --------------------------------------------------------------------------- refused before writing
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_run_that_cannot_run_is_refused_in_one_line_and_writes_nothing(data, tmp_path):
    d, scenario_id = data
    (tmp_path / "judge.py").write_text(
        "class Judge:\n    name = 'judge'\n    version = '1'\n    needs_model = True\n"
        "    def evaluate(self, ctx):\n        return True\n")
    run = ["run", "--scenario", scenario_id]
    cases = {
        "examples.nope:agent": ([*run, "--agent", "examples.nope:agent"], "cannot import module examples.nope"),
        "examples.support_agent:nope": ([*run, "--agent", "examples.support_agent:nope"],
                                        "examples.support_agent has no attribute nope; it has oracle"),
        "ftp": ([*run, "--agent", "ftp://x/v1"], "agent URL 'ftp://x/v1': ftp:// is not supported"),
        "down": ([*run, "--agent", f"http://127.0.0.1:{closed_port()}/v1"], "cannot reach the agent at http://"),
        "no model": ([*run, "--agent", "examples.support_agent:agent", "--mode", "simulate"],
                     "--mode simulate needs a model for the simulated user: set REPLAY_LLM_BASE_URL"),
        "hybrid": ([*run, "--agent", "examples.support_agent:agent", "--mode", "hybrid"], "--mode hybrid needs a model"),
        "judge": ([*run, "--agent", "examples.support_agent:agent", "--evaluator", "judge:Judge"],
                  "evaluator judge:Judge is an LLM judge and needs a model"),
        "bad evaluator": ([*run, "--agent", "examples.support_agent:agent", "--evaluator", "nope:X"],
                          "evaluator 'nope:X': cannot import 'nope'"),
    }
    env = replay_env(PYTHONPATH=str(tmp_path))
    procs = {k: subprocess.Popen(replay_cmd(d, args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 env=env, cwd=ROOT) for k, (args, _) in cases.items()}
    for k, p in procs.items():
        r = finish(p)
        line = assert_one_line_error(r)
        print(line)
        assert cases[k][1] in line, (k, line)
        assert r.stdout == ""
    counts = sql(d, "select (select count(*) from run_tests) run_tests, (select count(*) from executions) executions")
    assert counts == [{"run_tests": 0, "executions": 0}]
    assert not (d / "lake" / "chats").exists() or not any((d / "lake" / "chats").iterdir())


def test_option_errors_name_the_flag_and_its_choices(data):
    d, scenario_id = data
    run = ["run", "--scenario", scenario_id, "--agent", "examples.support_agent:agent"]
    results = replay_all([(d, [*run, "--tools", "recroded"]), (d, [*run, "--mode", "simluate"]),
                          (d, [*run, "--concurrency", "0", "--off-script", "skip"]),
                          (d, [*run, "--max-failure-rate", "1.5"])])
    lines = [assert_one_line_error(r) for r in results]
    print("\n".join(lines))
    assert lines == [
        "replay: error: --tools: 'recroded' is not one of recorded, live",
        "replay: error: --mode: 'simluate' is not one of replay, simulate, hybrid",
        "replay: error: --off-script: 'skip' is not one of error, nearest, fail; "
        "--concurrency: must be at least 1 (got 0)",
        "replay: error: --max-failure-rate: must be at most 1 (got 1.5)"]
    env = replay_env(REPLAY_WORKERS="-1")
    line = assert_one_line_error(replay(d, "sql", "select 1", env=env))
    assert line == "replay: error: REPLAY_WORKERS: must be at least 0 (got '-1')"
    for text in (*lines, line):
        assert not re.search(r"validation error|RunOptions|Settings|type=|pydantic|Input should", text), text
    assert sql(d, "select count(*) n from executions") == [{"n": 0}]


# --------------------------------------------------------------------------- progress per chat
RUN_36 = ["run", "--agent", "agents_lib:slow", "--repeat", "3", "--concurrency", "4", "--batch-size", "100"]


def test_progress_without_a_terminal_is_a_line_every_few_seconds(data):
    """One batch of 36 chats (--batch-size 100): the lines count chats as they end, not batches."""
    d, scenario_id = data
    r = replay(d, *RUN_36, "--scenario", scenario_id,
               env=agents_env(SLOW_AGENT_S="0.1", REPLAY_PROGRESS_INTERVAL_S="0.3"), timeout=120)
    assert r.returncode == 0, r.stderr
    print(r.stderr)
    counts = [int(m.group(1)) for m in re.finditer(r"^replay run: (\d+)/36 chats done, 0 failed, [\d.]+ chats/s, "
                                                    r"about \d+ s left$", r.stderr, re.M)]
    assert len(counts) >= 2 and counts == sorted(counts) and 0 < counts[0] < 36
    assert re.search(r"^replay run: 36/36 chats done, 0 failed in [\d.]+ s$", r.stderr, re.M)


def test_progress_on_a_terminal_is_a_bar_that_moves_chat_by_chat(data):
    """stderr a pseudo-terminal: a rich bar whose count goes up within the one batch."""
    d, scenario_id = data
    master, slave = pty.openpty()
    env = agents_env(SLOW_AGENT_S="0.1", TERM="xterm-256color", COLUMNS="120")
    p = subprocess.Popen(replay_cmd(d, [*RUN_36, "--scenario", scenario_id]), stdout=subprocess.PIPE,
                         stderr=slave, env=env, cwd=ROOT)
    os.close(slave)
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                if p.poll() is not None:
                    return
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # the terminal's other side closed
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    out, _ = p.communicate(timeout=120)
    reader.join(timeout=10)
    os.close(master)
    assert p.returncode == 0, out
    screen = b"".join(chunks).decode(errors="replace")
    seen = sorted({int(n) for n in re.findall(r"(\d+)/36", screen)})
    print(f"bar counts seen: {seen}")
    assert "chats" in screen and "failed" in screen
    assert len([n for n in seen if 0 < n < 36]) >= 3  # it moved chat by chat inside the one batch
    assert "replay run:" not in screen  # the bar, not the lines
