"""tasks/store/lake.py: what dead writers leave in the lake (staging dirs, temporary parts) is
removed; a live process's, or one of another host, is kept."""

import os
import subprocess
import time

from tasks.store import lake


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def _touch(path, age_s: float = 0):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"PAR1")
    if age_s:
        t = time.time() - age_s
        os.utime(path, (t, t))
    return path


def test_leftovers_of_dead_writers_are_swept(tmp_path):
    dead = _dead_pid()
    day = tmp_path / "spans" / "day=2026-01-01"
    keep = {
        "part": _touch(day / "part-1.parquet"),
        "live tmp": _touch(lake.tmp_path(day / "part-2.parquet")),
        "recent tmp of an older Replay": _touch(day / ".part-3.parquet.0badc0de.tmp"),
        "tmp of another host": _touch(day / f".part-4.parquet.{dead}@000000.0badc0de.tmp"),
        "live staging": _touch(lake.staging_dir(tmp_path, "run1") / "day=2026-01-01" / "p.parquet"),
    }
    gone = {
        "dead tmp": _touch(lake.tmp_path(tmp_path / "chats" / "day=2026-01-02" / "c.parquet", dead)),
        "old tmp of an older Replay": _touch(day / ".part-5.parquet.0badc0de.tmp", age_s=2 * lake.LEGACY_TMP_AGE_S),
        "dead staging": _touch(lake.staging_dir(tmp_path, "run2", dead) / "day=2026-01-01" / "p.parquet"),
        "staging of an older Replay": _touch(tmp_path / "_staging" / "0123456789ab" / "day=2026-01-01" / "p.parquet"),
    }
    removed = lake.sweep(tmp_path)
    assert [k for k, p in keep.items() if not p.exists()] == []
    assert [k for k, p in gone.items() if p.exists()] == []
    assert len(removed) == 4


def test_without_parts_only_staging_is_swept(tmp_path):
    dead = _dead_pid()
    tmp = _touch(lake.tmp_path(tmp_path / "spans" / "day=2026-01-01" / "p.parquet", dead))
    stage = lake.staging_dir(tmp_path, "run", dead)
    stage.mkdir(parents=True)
    assert lake.sweep(tmp_path, parts=False) == [stage] and tmp.exists()


def test_names_carry_their_owner():
    assert f".p.parquet.{os.getpid()}@" in lake.tmp_path(lake.Path("/l/p.parquet")).name
    assert lake.staging_dir(lake.Path("/l"), "r", 42).name.startswith("42@")
