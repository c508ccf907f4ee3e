"""A data dir made by ``replay ingest`` keeps working after a real ``mv``, and a ``cp -r`` copy
reads its own lake, never the original's (issue 11, finding 7)."""

from __future__ import annotations

import json
import subprocess

from cli_helpers import replay, replay_all
from otlp_helpers import make_line, make_span

from models.settings import SAMPLES_DIR

COUNTS = ("select (select count(*) from spans) as spans, (select count(*) from turns) as turns, "
          "(select count(*) from sessions) as sessions")


def counts(*dirs) -> list[dict]:
    out = []
    for r in replay_all([(d, ["sql", COUNTS, "--format", "json"]) for d in dirs]):
        assert r.returncode == 0, r.stderr
        out.append(json.loads(r.stdout)[0])
    return out


def test_moved_and_copied_data_dirs(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    r = replay(a, "ingest", SAMPLES_DIR / "otlp")
    assert r.returncode == 0, r.stderr
    (sample,) = counts(a)
    assert sample["spans"] == 139
    subprocess.run(["cp", "-r", str(a), str(b)], check=True)
    # the original grows after the copy: the copy must not see it
    extra = tmp_path / "extra.jsonl"
    extra.write_text(make_line({"service.name": "extra"}, [make_span(
        0x1234, 0x5678, None, "agent", 1_763_600_000_000_000_000, 1_763_600_001_000_000_000,
        {"openinference.span.kind": "AGENT", "session.id": "extra-session", "input.value": "hi",
         "output.value": "hello"})]) + "\n")
    assert replay(a, "ingest", extra).returncode == 0
    grown, copy = counts(a, b)
    assert grown == {"spans": 140, "turns": sample["turns"] + 1, "sessions": sample["sessions"] + 1}
    assert copy == sample
    # the original moves away: the moved dir works, and so does the copy (it never read a/)
    subprocess.run(["mv", str(a), str(c)], check=True)
    assert not a.exists()
    moved, copy = counts(c, b)
    assert moved == grown and copy == sample
    # both still take writes, each into its own lake
    assert replay(b, "ingest", extra).returncode == 0
    assert replay(c, "ingest", extra).returncode == 0  # a duplicate there: nothing added
    moved, copy = counts(c, b)
    assert moved == grown and copy == grown
    assert not a.exists()


def test_a_data_dir_with_a_comma_in_its_path_moves_too(tmp_path):
    """``file_search_path`` is a comma-separated list: such a data dir's views name its absolute
    path; ``replay sql`` reads the moved lake all the same, a writer rebuilds the views."""
    a, b = tmp_path / "x,y" / "a", tmp_path / "x,y" / "b"
    assert replay(a, "ingest", SAMPLES_DIR / "otlp").returncode == 0
    subprocess.run(["mv", str(a), str(b)], check=True)
    (moved,) = counts(b)
    assert moved["spans"] == 139
