"""`bosun mcp proxy`: the process. A runtime on the proxy's database, the proxy's agent
registered with the client as its model, one `ProxyServer`, on stdio or Streamable HTTP
(`/mcp`, behind `mcp_serve.guard.Guard`: Host/Origin against DNS rebinding, then a Bosun
API key, exactly as `bosun mcp serve`). No worker: each session's run is driven by the
session itself; everything else (approvals, kill switches) arrives through the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import uvicorn

from bosun import __version__
from bosun.engine.runtime import Runtime
from bosun.server.hub import Hub
from bosun.server.keys import Principal
from bosun.server.liveness import Liveness
from bosun.server.mcp_proxy.config import Proxy
from bosun.server.mcp_proxy.server import ProxyServer
from bosun.server.mcp_proxy.sessions import Sessions
from bosun.server.mcp_serve.serve import McpServeSettings, http_app
from bosun.server.state import ServerState, Settings


@dataclass
class ProxySettings:
    proxy: Proxy
    db: str | None = None  # None: the file's `db`, else the default database
    http_port: int | None = None  # None: stdio
    host: str = "127.0.0.1"
    identity: Principal | None = None  # stdio only; HTTP callers send a key
    allow_hosts: list[str] = field(default_factory=list)


def _instructions(proxy: Proxy) -> str:
    return (
        f"Tools of upstream MCP servers, governed by Bosun (proxy {proxy.agent.name}): every"
        " call is journaled and checked against policy; a call that needs approval waits"
        " until a person decides; refused calls answer with the reason."
    )


@contextlib.asynccontextmanager
async def opened(settings: ProxySettings) -> AsyncIterator[ProxyServer]:
    from bosun.store import default_db_url

    proxy = settings.proxy
    db = settings.db or proxy.file.db or default_db_url()
    runtime = Runtime(db)
    await runtime.open()
    state = ServerState(
        settings=Settings(db=db, agents=[], create_first_admin=False),
        runtime=runtime,
        agents={},
        hub=Hub(runtime.store),
        liveness=Liveness(runtime.store),
    )
    sessions = Sessions(runtime, proxy)
    await sessions.reap()  # runs a killed proxy left behind
    server = ProxyServer(
        state,
        settings.identity,
        sessions,
        name=f"bosun-proxy-{proxy.agent.name}",
        title=f"Bosun proxy {proxy.agent.name}",
        version=__version__,
        instructions=_instructions(proxy),
    )
    try:
        yield server
    finally:
        await sessions.close("the proxy stopped")
        state.hub.stopping.set()
        await runtime.close()


async def serve(settings: ProxySettings) -> int:
    """Serve until the client goes (stdio) or SIGTERM/SIGINT; either way each session's run
    is ended (`succeeded`, or cancelled if parked) before the process exits."""
    async with opened(settings) as server:
        if settings.http_port is None:
            task = asyncio.create_task(server.run_stdio_async())
            loop = asyncio.get_running_loop()
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signal.SIGTERM, task.cancel)
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await server.sessions.close("the client closed the session")
            return 0
        # uvicorn re-raises the signal that stopped it once it has shut down; with the
        # default handler that would end the process before the sessions' runs are ended.
        signal.signal(signal.SIGTERM, lambda *_: None)
        guard_settings = McpServeSettings(
            db="", http_port=settings.http_port, host=settings.host,
            allow_hosts=settings.allow_hosts,
        )  # fmt: skip
        guarded, inner = http_app(server, guard_settings)
        config = uvicorn.Config(
            guarded,
            host=settings.host,
            port=settings.http_port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            proxy_headers=False,
            server_header=False,
            timeout_graceful_shutdown=3,
        )
        web = uvicorn.Server(config)
        async with inner.router.lifespan_context(inner):
            task = asyncio.create_task(web.serve())
            while not web.started and not task.done():
                await asyncio.sleep(0.05)
            if web.started:
                print(
                    f"bosun mcp proxy: http://{settings.host}:{settings.http_port}/mcp",
                    file=sys.stderr,
                    flush=True,
                )
            await task
        return 0


def main_mcp_proxy(settings: ProxySettings) -> int:
    try:
        return asyncio.run(serve(settings))
    except KeyboardInterrupt:
        return 130
