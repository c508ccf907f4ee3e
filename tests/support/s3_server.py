"""A real S3-compatible server for tests: moto's server mode (``moto[server]``, a dev dependency)
on 127.0.0.1 and a free port, started by the test and stopped after it.

    with s3_server() as s3:          # ~1 s to start
        s3.make_bucket("team")
        env = replay_env(**s3.env, REPLAY_CATALOG_DIR=str(tmp / "catalog"))
        replay("s3://team/replay", "ingest", ..., env=env)

``s3.env`` holds what a user's environment would: the endpoint (``AWS_ENDPOINT_URL``), a key
pair and a region (moto accepts any key). Nothing leaves the loopback.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Iterator

import httpx
from clusters import free_port


@dataclass
class S3Server:
    endpoint: str
    proc: subprocess.Popen
    env: dict[str, str] = field(default_factory=dict)

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1")

    def make_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every object key under ``prefix``."""
        out = []
        for page in self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            out += [o["Key"] for o in page.get("Contents", [])]
        return sorted(out)


@contextlib.contextmanager
def s3_server(timeout_s: float = 60) -> Iterator[S3Server]:
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            env={**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "true"})
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"moto's S3 server exited with code {proc.returncode}")
            try:
                httpx.get(endpoint, timeout=2)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"moto's S3 server did not answer {endpoint} within {timeout_s:g} s") from None
                time.sleep(0.1)
        env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}
        yield S3Server(endpoint, proc, env)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
