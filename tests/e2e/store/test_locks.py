"""Locks and the processes that hold them (issue 11, findings 1 and 8), with real processes
and real signals: a stopped ingest leaves no worker, no lock and no leftover behind; a command
that waits for another Replay process says so at once; a reader waits for a writer instead of
failing, and a writer does not hold the catalog while a model writes a scenario."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest
from cli_helpers import ROOT, finish, replay, replay_env, start_logged, wait_for

from models.settings import SAMPLES_DIR
from tasks.store import lake

GEN = ROOT / "tests" / "bench" / "gen_otlp.py"
LOCK_HOLDER = ROOT / "tests" / "support" / "lock_holder.py"


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """~30 MB of OTLP/JSON in 4 files, and what they hold."""
    out = tmp_path_factory.mktemp("big")
    r = subprocess.run([sys.executable, str(GEN), "--out", str(out), "--mb", "30", "--files", "4", "--seed", "2",
                        "--json"], check=True, capture_output=True, text=True)
    return out, json.loads(r.stdout)


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _dead_pid() -> int:
    """The pid of a process that has just exited."""
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def _counts(d) -> dict:
    r = replay(d, "--json", "sql", "select (select count(*) from spans) spans, "
                                   "(select count(distinct (trace_id, span_id)) from spans) keys, "
                                   "(select count(*) from sessions) sessions, (select count(*) from turns) turns")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)[0]


def _hold(d, seconds: float, what: str) -> subprocess.Popen:
    """Another process holding the data dir's writer lock (or the lock and the catalog)."""
    holder = subprocess.Popen([sys.executable, str(LOCK_HOLDER), str(d), str(seconds), what],
                              stdout=subprocess.PIPE, text=True, env=replay_env(), cwd=ROOT)
    assert holder.stdout.readline().strip() == "held"
    return holder


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_a_stopped_ingest_leaves_no_worker_no_lock_no_leftover(tmp_path, big, sig):
    src, stats = big
    d = tmp_path / "d"
    env = replay_env(REPLAY_WORKERS="2", REPLAY_BATCH_BYTES=str(1024 * 1024))  # parts staged as parsing goes
    first = start_logged(d, ["ingest", src], tmp_path / "first", env)
    main = psutil.Process(first.pid)
    workers = wait_for(lambda: main.children() if len(main.children()) >= 2 else None, 60)
    try:
        assert workers, "the ingest started no worker process"
        assert wait_for(lambda: any((d / "lake" / "_staging").glob("*/*/*.parquet")), 60), "nothing staged"
        first.send_signal(sig)  # mid-parse: the workers are writing parts
        rc = first.wait(30)
        survivors = wait_for(lambda: not any(_alive(w) for w in workers), 5) or [w.pid for w in workers if _alive(w)]
        assert survivors is True, f"worker processes {survivors} outlived their ingest"
    finally:
        for w in workers or []:
            if _alive(w):
                w.kill()
    err = first.err_path.read_text()
    if sig == signal.SIGTERM:  # a clean stop: one line, non-zero, nothing staged left
        assert rc not in (0, None) and len(err.splitlines()) == 1, err
        assert err.startswith("replay: error:") and "SIGTERM" in err, err
        assert not any((d / "lake" / "_staging").glob("*")), "the stopped ingest left its staging dir"
    # what dead processes leave behind (a part being written, a staging dir), and one of a live one
    dead = _dead_pid()
    day = d / "lake" / "spans" / "day=2025-01-01"
    day.mkdir(parents=True, exist_ok=True)
    dead_tmp, live_tmp = lake.tmp_path(day / "part-x.parquet", dead), lake.tmp_path(day / "part-y.parquet")
    dead_stage = lake.staging_dir(d / "lake", "0123456789ab", dead) / "day=2025-01-01"
    dead_stage.mkdir(parents=True)
    (dead_stage / ".part-00000-0000-0000.parquet.tmp").write_bytes(b"PAR1 half a file")
    for f in (dead_tmp, live_tmp):
        f.write_bytes(b"PAR1 half a file")

    t0 = time.monotonic()
    again = replay(d, "--json", "ingest", src, env=env, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "waiting" not in again.stderr, again.stderr  # the lock died with its holder: taken at once
    assert time.monotonic() - t0 < 60
    assert _counts(d) == {"spans": stats["unique_spans"], "keys": stats["unique_spans"],
                          "sessions": stats["sessions"], "turns": stats["traces"]}
    assert not list((d / "lake" / "_staging").glob("*")), "staging dirs of dead processes are left"
    assert not dead_tmp.exists(), "a dead process's temporary part is left"
    assert live_tmp.exists(), "a live process's temporary part was removed"


def test_a_waiting_writer_says_whom_it_waits_for_and_how_long(tmp_path):
    d = tmp_path / "d"
    holder = _hold(d, 8, "lock")
    try:
        t0 = time.monotonic()
        ing = start_logged(d, ["--json", "ingest", SAMPLES_DIR / "otlp"], tmp_path / "ing")
        said = wait_for(lambda: ing.err_path.read_text(), 8)
        waited = time.monotonic() - t0
        assert holder.poll() is None, "the message came after the holder let go"
    finally:
        holder.wait(30)
    r = finish(ing, 60)
    assert r.returncode == 0, said
    line = said.splitlines()[0]
    assert f"pid {holder.pid}" in line and "lock_holder.py" in line and "since" in line, line
    assert "up to 600 s" in line, line
    assert json.loads(ing.out_path.read_text())["ingested"] == 139
    print(f"waiting message after {waited:.2f} s (process start included): {line}")


def test_sql_waits_for_a_writer_that_holds_the_catalog(tmp_path):
    d = tmp_path / "d"
    assert replay(d, "ingest", SAMPLES_DIR / "otlp").returncode == 0
    holder = _hold(d, 5, "writer")
    try:
        sql = start_logged(d, ["sql", "select count(*) n from spans", "--format", "csv"], tmp_path / "sql")
        said = wait_for(lambda: sql.err_path.read_text(), 5)
        assert holder.poll() is None, "the message came after the writer let go"
    finally:
        holder.wait(30)
    r = finish(sql, 60)
    assert r.returncode == 0, sql.err_path.read_text()
    assert sql.out_path.read_text() == "n\n139\n"
    assert f"pid {holder.pid}" in said and "waiting" in said and "up to" in said, said


def _notes(request):
    """A valid scenario-writer reply for whatever transcript the request carries."""
    prompt = "\n".join(m["content"] for m in request["messages"])
    n = int(prompt.split("exactly ", 1)[1].split(" ", 1)[0])
    return {"content": json.dumps({
        "intents": ["model_intent"] * n,
        "situation": "A returning customer who wants help with an order they placed last week.",
        "outcome": "The agent looked the order up. It answered the question and closed the chat.",
        "persona": {"name": "Alex", "age_group": "25-34", "occupation": "unknown", "location": "unknown",
                    "personality": "calm", "communication_style": "casual", "languages": ["en"],
                    "tone": "neutral", "verbosity": "medium", "typos": "none", "emoji_usage": "none",
                    "slang_usage": "none"},
        "steps": ["intent:model_intent", "outcome:resolved"], "branch_category": "resolved"})}


def test_sql_answers_while_a_model_writes_a_scenario(tmp_path):
    from llm_stub import llm_stub

    d = tmp_path / "d"
    assert replay(d, "ingest", SAMPLES_DIR / "otlp").returncode == 0
    rs = json.loads(replay(d, "--json", "replays", "create", "--project", "support-agent", "--type", "session",
                           "--ids", "sess_91d9f9b439fc,sess_9dfbab13dfae").stdout)
    answered = threading.Event()

    def slow_model(request):  # the model answers once the reader has had its answer (or after 20 s)
        answered.wait(20)
        return _notes(request)

    with llm_stub(slow_model) as stub:
        env = replay_env(REPLAY_LLM_BASE_URL=stub.base_url, REPLAY_LLM_MODEL="stub-model")
        gen = start_logged(d, ["--json", "scenarios", "generate", rs["replay_id"], "--agent-name", "bot",
                               "--scenario-name", "s", "--rows", "2"], tmp_path / "gen", env)
        assert wait_for(lambda: stub.chat_requests, 60), gen.err_path.read_text()
        t0 = time.monotonic()
        r = replay(d, "sql", "select state from replay_sessions", "--format", "csv", timeout=60)
        during, took = not answered.is_set(), time.monotonic() - t0
        answered.set()
        g = finish(gen, 60)
    assert g.returncode == 0, gen.err_path.read_text()
    assert r.returncode == 0 and during, r.stderr
    assert r.stdout == "state\nGENERATING\n" and "waiting" not in r.stderr, (r.stdout, r.stderr)
    assert json.loads(gen.out_path.read_text())["writer"] == "llm:stub-model"
    print(f"replay sql answered in {took:.2f} s while the model was writing")
