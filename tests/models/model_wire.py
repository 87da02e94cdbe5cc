"""A real HTTP server on 127.0.0.1 that answers a provider's wire format from a script.

Each reply is JSON, a list of server-sent events (`sse`), or an error status; every
request is recorded (path, headers, JSON body) so a test checks what the SDK sent.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict -> JSON
    sse: list[tuple[str | None, dict[str, Any]]] | None = None  # (event name, data)
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=lambda: {"retry-after-ms": "1"})


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class WireServer:
    def __init__(self, replies: list[Reply]):
        self.replies = replies
        self.requests: list[Seen] = []
        self.release = threading.Event()
        wire = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                index = len(wire.requests)
                wire.requests.append(
                    Seen(
                        self.path, {k.lower(): v for k, v in self.headers.items()}, json.loads(raw)
                    )
                )
                reply = wire.replies[min(index, len(wire.replies) - 1)]
                if reply.delay:
                    wire.release.wait(reply.delay)
                if reply.sse is not None:
                    chunks = []
                    for name, data in reply.sse:
                        head = f"event: {name}\n" if name else ""
                        chunks.append(f"{head}data: {json.dumps(data)}\n\n")
                    payload = "".join(chunks).encode()
                    kind = "text/event-stream"
                else:
                    payload = json.dumps(reply.body).encode()
                    kind = "application/json"
                self.send_response(reply.status)
                self.send_header("content-type", kind)
                self.send_header("content-length", str(len(payload)))
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                with contextlib.suppress(OSError):
                    self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> WireServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        time.sleep(0)
