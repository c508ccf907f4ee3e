"""The lake on object storage: ``REPLAY_DATA_DIR=s3://bucket/prefix`` against a real S3-compatible
server started by the test (moto's server mode on 127.0.0.1), through the CLI as a user runs it.
The catalog stays on this machine (``REPLAY_CATALOG_DIR``); the bucket holds the lake's parts,
and nothing else (no staging, no temporary object)."""

import json
import time
from pathlib import Path

import pytest
from cli_helpers import finish, replay, replay_env, start
from otlp_days import write_day
from test_compact import QUERIES

pytestmark = pytest.mark.slow

BUCKET, PREFIX = "team", "replay"
URL = f"s3://{BUCKET}/{PREFIX}"


@pytest.fixture(scope="module")
def s3():
    from s3_server import s3_server

    with s3_server() as server:
        yield server


@pytest.fixture
def bucket(s3, request):
    """A new bucket for the test; its name, and the environment of a user of it."""
    name = f"t{abs(hash(request.node.name)) % 10**8}-{time.time_ns() % 10**6}"
    s3.make_bucket(name)
    return name


def env_for(s3, catalog: Path, **extra: str) -> dict[str, str]:
    return replay_env(**s3.env, REPLAY_CATALOG_DIR=str(catalog), **extra)


def days_of_traces(tmp: Path, days: int, sessions: int) -> list[Path]:
    out = []
    for day in range(days):
        f = tmp / "otlp" / f"day-{day:03d}.jsonl"
        f.parent.mkdir(parents=True, exist_ok=True)
        write_day(f, day, sessions, seed=5)
        out.append(f)
    return out


def ingest(data_dir, files, env) -> dict:
    for f in files:
        r = replay(data_dir, "--json", "ingest", f, env=env, timeout=180)
        assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def answers(data_dir, env) -> list[str]:
    out = []
    for q in QUERIES:
        r = replay(data_dir, "sql", q, "--format", "csv", env=env)
        assert r.returncode == 0, (q, r.stderr)
        out.append(r.stdout)
    return out


def test_ingest_to_s3_answers_the_readme_queries_as_local_disk_and_compacts(s3, bucket, tmp_path):
    files = days_of_traces(tmp_path, 4, 30)
    url = f"s3://{bucket}/{PREFIX}"
    env = env_for(s3, tmp_path / "catalog", REPLAY_COMPACT_MIN_FILES="0")
    local_env = replay_env(REPLAY_COMPACT_MIN_FILES="0")
    ingest(url, files, env)
    ingest(tmp_path / "local", files, local_env)
    on_disk = answers(tmp_path / "local", local_env)
    assert answers(url, env) == on_disk
    assert on_disk[0].count("\n") > 3  # the tool table is not empty

    keys = s3.keys(bucket)
    assert keys and all(k.startswith(f"{PREFIX}/lake/") and k.endswith(".parquet") for k in keys), keys
    assert {k.split("/")[2] for k in keys} == {"spans", "turns", "sessions"}
    local = sorted(p.relative_to(tmp_path / "local").as_posix() for p in (tmp_path / "local" / "lake").rglob("*.parquet"))
    assert len(keys) == len(local)  # the same layout, part for part
    assert (tmp_path / "catalog" / "replay.duckdb").is_file()  # the catalog stays on this machine
    assert not any((tmp_path / "catalog" / "lake" / "_staging").glob("*"))

    # `replay sql` reads the lake's prefix, nothing else of the bucket
    s3.client().put_object(Bucket=bucket, Key="private/x.parquet", Body=b"PAR1")
    r = replay(url, "sql", f"select * from read_parquet('s3://{bucket}/private/x.parquet')", env=env)
    assert r.returncode != 0 and "disabled by configuration" in r.stderr, r.stdout + r.stderr
    s3.client().delete_object(Bucket=bucket, Key="private/x.parquet")

    r = replay(url, "--json", "compact", env=env, timeout=180)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert sum(t["compacted"] for t in info["tables"]) > 0
    after = s3.keys(bucket)
    assert len(after) < len(keys), (keys, after)
    assert answers(url, env) == on_disk
    again = json.loads(replay(url, "--json", "compact", env=env, timeout=180).stdout)
    assert sum(t["compacted"] for t in again["tables"]) == 0 and s3.keys(bucket) == after
    r = replay(url, "--json", "check", env=env, timeout=180)
    assert r.returncode == 0 and json.loads(r.stdout)["broken"] == [], r.stdout + r.stderr


def test_readers_during_an_ingest_see_the_lake_before_or_after_it(s3, bucket, tmp_path):
    url = f"s3://{bucket}/{PREFIX}"
    env = env_for(s3, tmp_path / "catalog")
    first, *rest = days_of_traces(tmp_path, 6, 120)
    before = ingest(url, [first], env)["sessions"]
    spans_before = replay(url, "--json", "sql", "select count(*) n from spans", env=env)
    n0 = json.loads(spans_before.stdout)[0]["n"]
    writer = start(url, ["--json", "ingest", *rest], env=env)
    seen = set()
    while writer.poll() is None:
        r = replay(url, "--json", "sql", "select (select count(*) from spans) n, (select count(*) from sessions) s",
                   env=env, timeout=120)
        assert r.returncode == 0, r.stderr
        row = json.loads(r.stdout)[0]
        seen.add((row["n"], row["s"]))
    done = finish(writer, 180)
    assert done.returncode == 0, done.stderr
    after = json.loads(done.stdout)
    n1 = json.loads(replay(url, "--json", "sql", "select count(*) n from spans", env=env).stdout)[0]["n"]
    assert n1 > n0
    # a reader saw the lake as it was before the ingest, or after its spans, or after its sessions too: never half
    # of the ingest's spans, never sessions without their spans
    allowed = {(n0, before), (n1, before), (n1, after["sessions"])}
    assert seen <= allowed, (seen, allowed)


def test_a_bucket_that_refuses_writes_fails_in_one_line_and_leaves_nothing_half_visible(s3, tmp_path):
    files = days_of_traces(tmp_path, 1, 10)
    missing = "no-such-bucket"
    env = env_for(s3, tmp_path / "catalog")
    r = replay(f"s3://{missing}/{PREFIX}", "ingest", files[0], env=env, timeout=120)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and missing in lines[0] and "bucket" in lines[0].lower(), r.stderr
    assert "Traceback" not in r.stderr
    assert not any((tmp_path / "catalog" / "lake" / "_staging").glob("*")), "the failed ingest left its staging"
    # nothing of it is visible: the catalog holds no span, and an ingest into a bucket that exists works
    r = replay(f"s3://{missing}/{PREFIX}", "--json", "sql", "select count(*) n from spans", env=env)
    assert r.returncode == 0 and json.loads(r.stdout)[0]["n"] == 0, r.stdout + r.stderr
    s3.make_bucket(missing)
    r = replay(f"s3://{missing}/{PREFIX}", "--json", "ingest", files[0], env=env, timeout=120)
    assert r.returncode == 0 and json.loads(r.stdout)["ingested"] > 0, r.stderr


def test_the_whole_loop_on_s3(s3, bucket, tmp_path):
    """The demo (ingest, replay, scenario, two versions run, scored, compared, a report) on a lake in
    a bucket: its chats, turns and scores are parts in the bucket, read back through the catalog."""
    url = f"s3://{bucket}/{PREFIX}"
    env = env_for(s3, tmp_path / "catalog")
    r = replay(url, "--json", "demo", env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["data_dir"] == url
    assert all(f"--data-dir {url} " in n["command"] for n in out["next"] if n["command"].startswith("uv run"))
    tables = {k.split("/")[2] for k in s3.keys(bucket)}
    assert {"spans", "turns", "sessions", "chats", "chat_turns", "eval_scores"} <= tables
    rows = json.loads(replay(url, "--json", "sql", "select count(*) chats, count(distinct execution_id) runs, "
                             "(select count(*) from eval_scores) scores from chats", env=env).stdout)[0]
    assert rows["runs"] == 2 and rows["chats"] > 0 and rows["scores"] > 0
    report = next(Path(n["command"].removeprefix("file://")) for n in out["next"] if n["command"].startswith("file://"))
    assert report.is_file() and report.is_relative_to(tmp_path / "catalog")


def test_a_run_killed_between_a_batchs_two_parts_resumes_on_s3_without_a_duplicate(s3, bucket, tmp_path):
    """REPLAY_TEST_CRASH_AFTER=chat_turns:2 kills the run (SIGKILL) right after the second batch's
    chat_turns object, before its chats object: the half batch is invisible, resume removes it from
    the bucket and runs it again; no turn twice."""
    import signal

    from cli_helpers import sample_scenario

    url = f"s3://{bucket}/{PREFIX}"
    env = env_for(s3, tmp_path / "catalog")
    scenario_id = sample_scenario(url, env=env)["scenario_id"]
    run = ["--json", "run", "--scenario", scenario_id, "--agent", "examples.support_agent:agent",
           "--repeat", "2", "--batch-size", "6", "--concurrency", "6"]
    r = replay(url, *run, env=env | {"REPLAY_TEST_CRASH_AFTER": "chat_turns:2"}, timeout=180)
    assert r.returncode == -signal.SIGKILL
    turn_keys = s3.keys(bucket, f"{PREFIX}/lake/chat_turns/")
    chat_keys = s3.keys(bucket, f"{PREFIX}/lake/chats/")
    execution_id = turn_keys[0].split("/")[3].removeprefix("exec=")
    # batches persist concurrently: at the kill, one or two of them may have their turns and not their chats
    half = {k.rsplit("/", 1)[1] for k in turn_keys} - {k.rsplit("/", 1)[1] for k in chat_keys}
    assert half, (turn_keys, chat_keys)  # a batch's turns are in the bucket, its chats not
    orphans = json.loads(replay(url, "--json", "sql", "select count(*) n from chat_turns where chat_id not in "
                                "(select chat_id from chats)", env=env).stdout)[0]["n"]
    assert orphans == 0  # readers never see the half batch

    r = replay(url, "--json", "runs", "resume", execution_id, env=env, timeout=180)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["status"] == "completed" and info["completed_chats"] + info["failed_chats"] == 24
    turns = json.loads(replay(url, "--json", "sql", "select count(*) n, count(distinct (chat_id, turn_index)) d "
                              f"from chat_turns where execution_id = '{execution_id}'", env=env).stdout)[0]
    assert turns["n"] == turns["d"] == 38 * 2
    assert {k.rsplit("/", 1)[1] for k in s3.keys(bucket, f"{PREFIX}/lake/chat_turns/")} == \
        {k.rsplit("/", 1)[1] for k in s3.keys(bucket, f"{PREFIX}/lake/chats/")}
