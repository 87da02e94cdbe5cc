"""A real local HTTP receiver for webhook tests (asyncio streams, no framework)."""

from __future__ import annotations

import asyncio


class Receiver:
    """Answers 500 to the first `fail_first` POSTs, then 200; records (status, body)."""

    def __init__(self, fail_first: int = 0):
        self.fail_first = fail_first
        self.requests: list[tuple[int, bytes]] = []
        self.url = ""
        self._server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.decode("latin-1").split("\r\n"):
            if line.lower().startswith("content-length:"):
                length = int(line.split(":", 1)[1])
        body = await reader.readexactly(length)
        status = 500 if len(self.requests) < self.fail_first else 200
        self.requests.append((status, body))
        reason = "OK" if status == 200 else "Internal Server Error"
        writer.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        writer.close()

    async def __aenter__(self) -> Receiver:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/alerts"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
