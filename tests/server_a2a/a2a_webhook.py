"""A real webhook receiver on 127.0.0.1 (the stdlib's HTTP server in a thread): it keeps
every request it was sent and can be told to fail the first N with a 500."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class Webhook:
    def __init__(self, fail_first: int = 0, port: int = 0):
        self.fail_first = fail_first
        self.requests: list[Received] = []
        self._lock = threading.Condition()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with hook._lock:
                    failing = hook.fail_first > 0
                    hook.fail_first -= 1 if failing else 0
                    status = 500 if failing else 200
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    hook.requests.append(Received(headers, body, status))
                    hook._lock.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def delivered(self) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.status == 200]

    def wait_for(self, check, timeout: float = 20.0) -> list[Received]:
        """Block until `check(delivered requests)` is true (or the timeout: then the
        requests as they are, for the assertion to show)."""
        ends = time.monotonic() + timeout
        with self._lock:
            while True:
                got = [r for r in self.requests if r.status == 200]
                if check(got) or time.monotonic() > ends:
                    return got
                self._lock.wait(0.1)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
