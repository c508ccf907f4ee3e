"""A stand-in for a Phoenix server behind a basic-auth proxy, on loopback: the recorded first page
of ``tests/cases/phoenix`` (as the last page), or errors that echo the request back (what some
proxies and servers do), to see what of a URL's credentials reaches errors and stored rows."""

from __future__ import annotations

import base64
import contextlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator
from urllib.parse import parse_qs, urlsplit

CASES = Path(__file__).resolve().parents[1] / "cases" / "phoenix"
PROJECT = "e2e-proj"


@dataclass
class PhoenixStub:
    port: int
    user: str | None
    password: str | None
    mode: str = "ok"  # ok | fail (HTTP 500 echoing the request and its Authorization header)
    requests: list[dict] = field(default_factory=list)

    def url(self, user: str | None = None, password: str | None = None) -> str:
        auth = f"{user}:{password}@" if user else ""
        return f"http://{auth}127.0.0.1:{self.port}"


def _handler(stub: PhoenixStub) -> type[BaseHTTPRequestHandler]:
    page = json.loads((CASES / "page_first.json").read_text())
    page["next_cursor"] = None

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet
            pass

        def _send(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            auth = self.headers.get("Authorization", "")
            query = parse_qs(urlsplit(self.path).query)
            stub.requests.append({"path": self.path, "authorization": auth, "cursor": query.get("cursor", [None])[0]})
            if stub.mode == "fail":
                self._send(500, {"detail": f"upstream failed: GET {self.path} Host {self.headers.get('Host')} "
                                           f"Authorization: {auth}"})
                return
            if stub.user is not None:
                want = "Basic " + base64.b64encode(f"{stub.user}:{stub.password}".encode()).decode()
                if auth != want:
                    self._send(401, {"detail": f"bad credentials: {auth}"})
                    return
            if query.get("cursor"):
                self._send(200, {"data": [], "next_cursor": None})
            else:
                self._send(200, page)

    return Handler


@contextlib.contextmanager
def phoenix_stub(user: str | None = None, password: str | None = None) -> Iterator[PhoenixStub]:
    stub = PhoenixStub(port=0, user=user, password=password)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(stub))
    stub.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
