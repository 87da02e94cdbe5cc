"""A tool source kind served over real HTTP on 127.0.0.1, for the lifecycle tests.

`ToolServer` is a stdlib `ThreadingHTTPServer` in a thread: `GET /tools` lists the
definitions it serves now (tests change them between opens), `POST /call/NAME` answers
`{"result": ...}`. It can be stopped and started again on the same port, so a source's
connection breaks for real. `HttpSource` is the source kind (`http-test`) the tests
register: it opens an `httpx.AsyncClient`, discovers over HTTP, and turns a transport
error into `SourceUnavailable`, as a real MCP or A2A client would.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from bosun.errors import SourceUnavailable
from bosun.spec.definition import SourceSpec, ToolDefinition
from bosun.tools.sources import Call

# Every source of this kind opened and closed, in order (the lifecycle tests read it).
EVENTS: list[tuple[str, str]] = []


class ToolServer:
    def __init__(self) -> None:
        self.port = 0
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.definitions: list[dict[str, Any]] = [
            {
                "name": "echo",
                "description": "Echo the text back.",
                "parameters": {"type": "object", "properties": {"text": {"type": "string"}}},
                "effect": "read",
                "idempotent": True,
                "trusted": False,
            }
        ]
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._send(owner.definitions)

            def do_POST(self) -> None:
                name = self.path.rsplit("/", 1)[-1]
                arguments = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.calls.append((name, arguments))
                self._send({"result": {"tool": name, **arguments}})

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()
        self._server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class HttpSource:
    def __init__(self, spec: SourceSpec):
        self.spec = spec
        self.client: httpx.AsyncClient | None = None

    async def open(self) -> None:
        self.client = httpx.AsyncClient(base_url=self.spec.identity, timeout=5)
        EVENTS.append(("open", self.spec.identity))

    async def discover(self) -> list[ToolDefinition]:
        assert self.client is not None
        try:
            answer = await self.client.get("/tools")
        except httpx.TransportError as exc:
            raise SourceUnavailable(f"{self.spec.identity}: {exc!r}") from exc
        return [
            ToolDefinition(**d, source_kind="http-test", source_id=self.spec.identity)
            for d in answer.json()
        ]

    async def invoke(self, name: str, arguments: dict[str, Any], call: Call) -> Any:
        assert self.client is not None
        try:
            answer = await self.client.post(f"/call/{name}", json=arguments, timeout=call.timeout)
        except httpx.TransportError as exc:
            sent = not isinstance(exc, httpx.ConnectError)
            raise SourceUnavailable(f"{self.spec.identity}: {exc!r}", sent=sent) from exc
        return answer.json()["result"]

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()
            self.client = None
        EVENTS.append(("close", self.spec.identity))
