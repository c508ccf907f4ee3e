"""The lake on object storage (``REPLAY_DATA_DIR=s3://bucket/prefix``, or any fsspec URL).

A remote lake is an fsspec path (``upath.UPath``: the Path API over s3fs, gcsfs, adlfs, ...)
with the same layout as a local one (``lake/<table>/day=YYYY-MM-DD/<part>.parquet``). Object
stores have no rename: a part is written under its final, unique name and is visible when its
PUT completes (a multipart upload is visible only once whole); staging happens on this
machine's disk (``Settings.home``), and publishing a staged part is one upload. Listings are
never cached (another process may have written since). The catalog, the writer lock and the
reports stay on this machine.

Credentials and the endpoint come from the filesystem's own configuration: for S3, the usual
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_ENDPOINT_URL``/``AWS_REGION`` variables or
profile (boto's rules), never from Replay's settings.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from tasks.common.errors import ReplayError


class RemoteLakeError(ReplayError):
    """The object store refused an operation (one-line reason)."""


def lake_path(url: str):
    """The fsspec path of ``url``, listings uncached."""
    from upath import UPath

    return UPath(url, use_listings_cache=False)


def is_remote(path: Any) -> bool:
    """Whether ``path`` is on object storage (an fsspec path, or an ``scheme://`` text)."""
    if isinstance(path, Path):
        return False
    if isinstance(path, str):
        return "://" in path and not path.startswith("file://")
    return getattr(path, "protocol", "") not in ("", "file", "local")


def as_path(path: Any):
    """A local Path, or the fsspec path of a remote one (a ``scheme://`` text included)."""
    if isinstance(path, str):
        return lake_path(path) if is_remote(path) else Path(path)
    return path


def refusal(exc: BaseException, what: str) -> RemoteLakeError:
    """An object store's error as one line: what failed, and its reason."""
    reason = (str(exc).splitlines() or [type(exc).__name__])[0]
    return RemoteLakeError(f"cannot {what}: {reason}")


def put_file(local: Path, dest) -> None:
    """Upload a complete local file to ``dest`` (visible when the upload completes)."""
    try:
        dest.fs.put_file(str(local), dest.path)
    except Exception as exc:  # noqa: BLE001 - every store has its own errors: one line
        raise refusal(exc, f"write {dest}") from exc


def write_parquet(write, dest) -> None:
    """``write(file)`` into a new object ``dest`` (one PUT, visible once closed)."""
    try:
        with dest.fs.open(dest.path, "wb") as f:
            write(f)
    except RemoteLakeError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise refusal(exc, f"write {dest}") from exc


@contextlib.contextmanager
def local_copy(path) -> Iterator[Path]:
    """``path`` itself when it is local; else a temporary local copy of the object (removed after)."""
    if not is_remote(path):
        yield Path(path)
        return
    p = as_path(path)
    with tempfile.TemporaryDirectory(prefix="replay-part-") as d:
        local = Path(d) / p.name
        try:
            p.fs.get_file(p.path, str(local))
        except Exception as exc:  # noqa: BLE001
            raise refusal(exc, f"read {p}") from exc
        yield local


def move_to_local(path, dest: Path) -> None:
    """Move an object to a local file: downloaded, then deleted from the store."""
    p = as_path(path)
    p.fs.get_file(p.path, str(dest))
    p.unlink()


def parquet_file(path) -> pq.ParquetFile:
    """A part's Parquet metadata and row groups, local or remote."""
    if is_remote(path):
        p = as_path(path)
        return pq.ParquetFile(p.fs.open(p.path, "rb"))
    return pq.ParquetFile(path)


def register(con, path) -> None:
    """Let a DuckDB connection read ``path``'s filesystem (its ``scheme://`` URLs)."""
    if is_remote(path):
        con.register_filesystem(as_path(path).fs)


__all__ = ["RemoteLakeError", "as_path", "is_remote", "lake_path", "local_copy", "move_to_local", "parquet_file",
           "put_file", "refusal", "register", "write_parquet"]
