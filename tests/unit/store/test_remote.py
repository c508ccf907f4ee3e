"""The lake on object storage, its pure parts and its part I/O on fsspec's in-memory filesystem
(``memory://``: an object store in this process, no server; the S3 server tests are in
tests/e2e/store/test_s3_lake.py)."""

from pathlib import Path

import pyarrow as pa
import pytest

from models.settings import default_catalog_dir, is_url, load_settings
from tasks.store import catalog, lake, remote


def test_a_data_dir_is_a_folder_or_a_url():
    assert is_url("s3://bucket/prefix") and is_url("gs://b") and is_url("memory://x")
    assert not is_url("data") and not is_url("/srv/replay") and not is_url("file:///srv/replay") and not is_url("C:/x")
    s = load_settings(data_dir="s3://bucket/team/")
    assert s.data_dir == "s3://bucket/team" and s.lake_url == "s3://bucket/team"
    assert str(s.lake_dir) == "s3://bucket/team/lake" and remote.is_remote(s.lake_dir)
    assert s.home == default_catalog_dir("s3://bucket/team") and s.catalog_path == s.home / "replay.duckdb"
    assert s.work_dir == s.home / "lake" and isinstance(s.work_dir, Path)
    local = load_settings(data_dir="file:///srv/replay")
    assert local.data_dir == Path("/srv/replay") and local.lake_url is None and local.home == Path("/srv/replay")
    assert local.work_dir == local.lake_dir == Path("/srv/replay/lake")
    mine = load_settings(data_dir="s3://bucket/team", catalog_dir="/srv/catalog")
    assert mine.catalog_path == Path("/srv/catalog/replay.duckdb")
    # a folder keeps its catalog in it, whatever REPLAY_CATALOG_DIR says (it is for a URL)
    assert load_settings(data_dir="/srv/replay", catalog_dir="/srv/catalog").home == Path("/srv/replay")


def test_the_default_catalog_dir_is_one_per_url():
    a, b = default_catalog_dir("s3://bucket/team"), default_catalog_dir("s3://bucket/team2")
    assert a != b and a.parent == Path.home() / ".local" / "share" / "replay" / "s3"
    assert a.name.startswith("bucket_team-") and default_catalog_dir("s3://bucket/team") == a


def test_remote_or_local():
    assert remote.is_remote("s3://b/k") and not remote.is_remote("/tmp/x") and not remote.is_remote(Path("/tmp/x"))
    assert not remote.is_remote("file:///tmp/x")
    assert isinstance(remote.as_path("/tmp/x"), Path) and remote.is_remote(remote.as_path("memory://b/k"))


@pytest.fixture
def mem_lake():
    import fsspec

    root = f"memory://replay-test-{id(object())}"
    yield remote.lake_path(f"{root}/lake")
    fsspec.filesystem("memory").rm(root.removeprefix("memory://"), recursive=True)


def test_parts_are_written_read_listed_and_published_on_an_object_store(mem_lake, tmp_path):
    rows = pa.table({"trace_id": ["t1", "t2"], "n": [1, 2]})
    dest = mem_lake / "spans" / "day=2025-01-01" / "a.parquet"
    assert lake.write_atomic(rows, dest) == dest
    assert lake.read_part(dest).equals(rows) and lake.read_part(str(dest)).equals(rows)
    assert remote.parquet_file(dest).metadata.num_rows == 2
    staged = tmp_path / "b.parquet"
    lake.write_atomic(rows, staged)
    published = lake.publish(staged, mem_lake, "spans", "2025-01-02", "b.parquet")
    assert not staged.exists() and published.exists()
    assert [f.name for f in lake.list_files(mem_lake, "spans")] == ["a.parquet", "b.parquet"]
    assert lake.has_files(mem_lake, "spans") and not lake.has_files(mem_lake, "turns")
    assert lake.table_glob(mem_lake, "spans") == f"{mem_lake}/spans/*/*.parquet"
    # no temporary object: a part is written under its final name, whole
    assert sorted(p.name for p in mem_lake.glob("spans/*/*")) == ["a.parquet", "b.parquet"]
    with remote.local_copy(dest) as local:
        assert isinstance(local, Path) and local.is_file()
    assert not local.exists()


def test_a_view_reads_the_parts_of_an_object_store_through_duckdb(mem_lake):
    import duckdb

    lake.write_atomic(pa.table({"x": [1, 2, 3]}), mem_lake / "spans" / "day=2025-01-01" / "a.parquet")
    src = catalog.lake_source(mem_lake, "spans")
    assert f"'{mem_lake}/spans/*/*.parquet'" in src
    con = duckdb.connect()
    remote.register(con, mem_lake)
    assert con.execute(f"SELECT count(*) FROM read_parquet('{lake.table_glob(mem_lake, 'spans')}')").fetchone()[0] == 3


def test_an_object_store_error_is_one_line():
    err = remote.refusal(FileNotFoundError("The specified bucket does not exist\nrequest id 42"), "write s3://x/y")
    assert str(err) == "cannot write s3://x/y: The specified bucket does not exist"

