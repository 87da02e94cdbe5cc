"""`bosun mcp serve`: Bosun's agents and control plane over MCP, on stdio or Streamable HTTP.

One process holds what `bosun serve` holds (a `ServerState`: runtime, agents, an in-process
worker) and one `BosunMCPServer` over it. Over HTTP the MCP endpoint is `/mcp`, behind
`guard.Guard` (Host/Origin, then a Bosun API key); the SDK's transport serves both protocol
eras (the 2026-07-28 stateless requests and the 2025-11-25 `initialize` handshake).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import uvicorn
from mcp.server.transport_security import TransportSecuritySettings

from bosun import __version__
from bosun.engine.runtime import Runtime
from bosun.engine.worker import Worker
from bosun.errors import BosunError
from bosun.server.hub import Hub
from bosun.server.keys import Principal
from bosun.server.liveness import Liveness
from bosun.server.mcp_serve.agents import add_agent_tools
from bosun.server.mcp_serve.control import add_control_tools
from bosun.server.mcp_serve.guard import Guard, allowed_hosts
from bosun.server.mcp_serve.server import BosunMCPServer
from bosun.server.state import ServerState, Settings, load_agents

INSTRUCTIONS = (
    "Bosun agents and Bosun's control plane. Each agent tool starts a journaled, governed"
    " run and answers with its output; a run that needs approval answers with what is"
    " pending. list_runs, show_run and list_approvals read your tenant; approve, deny and"
    " kill act on it, for keys whose role allows it."
)


@dataclass
class McpServeSettings:
    db: str
    agents: list[str] = field(default_factory=list)
    http_port: int | None = None  # None: stdio
    host: str = "127.0.0.1"
    identity: Principal | None = None  # stdio and fixtures mode; HTTP callers send a key
    fixtures: bool = False  # also the conformance suite's fixture tools, resources, prompts
    allow_hosts: list[str] = field(default_factory=list)  # Host names besides loopback
    answer_within: float = 300.0  # seconds an agent tool follows its run before answering
    workers: bool = True
    lease_seconds: float = 30.0


def check(settings: McpServeSettings) -> None:
    """Refuse what would be unsafe before anything is opened."""
    if settings.fixtures:
        if settings.http_port is None:
            raise BosunError("--conformance-fixtures serves HTTP: add --http PORT")
        if not _is_loopback(settings.host):
            raise BosunError(
                f"--conformance-fixtures takes no credentials, so it binds only to loopback"
                f" (127.0.0.1, ::1 or localhost), not {settings.host!r}"
            )
    if settings.answer_within <= 0:
        raise BosunError("--answer-within must be more than 0 seconds")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@contextlib.asynccontextmanager
async def opened(settings: McpServeSettings) -> AsyncIterator[BosunMCPServer]:
    """The server with its runtime open and (unless told otherwise) a worker driving runs."""
    check(settings)
    agents = load_agents(settings.agents)
    runtime = Runtime(settings.db, lease_seconds=settings.lease_seconds)
    await runtime.open()
    state = ServerState(
        settings=Settings(db=settings.db, agents=settings.agents, create_first_admin=False),
        runtime=runtime,
        agents=agents,
        hub=Hub(runtime.store),
        liveness=Liveness(runtime.store),
    )
    for agent in agents.values():
        runtime.register(agent)
    if settings.workers:
        state.worker = Worker(runtime, shutdown_grace=5.0)
        state.worker_task = state.worker.start(state.stop)
    try:
        yield build(state, settings)
    finally:
        state.stop.set()
        state.hub.stopping.set()
        if state.worker_task is not None:
            with contextlib.suppress(Exception):
                await state.worker_task
        await runtime.close()


def build(state: ServerState, settings: McpServeSettings) -> BosunMCPServer:
    server = BosunMCPServer(
        state,
        settings.identity,
        name="bosun",
        title="Bosun",
        version=__version__,
        instructions=INSTRUCTIONS,
    )
    add_control_tools(server)
    if settings.fixtures:
        from bosun.server.mcp_serve.fixture_content import install_fixture_content
        from bosun.server.mcp_serve.fixtures import install_fixture_tools

        install_fixture_tools(server)
        install_fixture_content(server)
    add_agent_tools(server, state.agents, settings.answer_within)  # last: checks for clashes
    return server


def http_app(server: BosunMCPServer, settings: McpServeSettings):
    """The ASGI app: the SDK's Streamable HTTP transport at /mcp, inside `Guard`."""
    hosts = allowed_hosts(settings.host, settings.allow_hosts)
    patterns = [f"{h}:*" if ":" not in h else f"[{h}]:*" for h in hosts]
    security = TransportSecuritySettings(
        allowed_hosts=[*hosts, *patterns],
        allowed_origins=[f"{s}://{p}" for s in ("http", "https") for p in [*hosts, *patterns]],
    )
    options: dict = {}
    if settings.fixtures:  # SSE resumability scenarios (SEP-1699) replay from a store
        from bosun.server.mcp_serve.fixture_content import InMemoryEventStore

        options = {"event_store": InMemoryEventStore(), "retry_interval": 100}
    app = server.streamable_http_app(transport_security=security, host=settings.host, **options)
    guard = Guard(app, state=server.bosun, hosts=hosts, credentials=not settings.fixtures)
    return guard, app


async def serve(settings: McpServeSettings) -> int:
    async with opened(settings) as server:
        if settings.http_port is None:
            await server.run_stdio_async()
            return 0
        guarded, inner = http_app(server, settings)

        @contextlib.asynccontextmanager
        async def lifespan(_app) -> AsyncIterator[None]:
            async with inner.router.lifespan_context(inner):  # the session manager
                yield

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
        async with lifespan(None):
            task = asyncio.create_task(web.serve())
            while not web.started and not task.done():
                await asyncio.sleep(0.05)
            if web.started:
                mode = " (conformance fixtures, no credentials)" if settings.fixtures else ""
                print(
                    f"bosun mcp serve: http://{settings.host}:{settings.http_port}/mcp{mode}",
                    file=sys.stderr,
                    flush=True,
                )
            await task
        return 0


def main_mcp_serve(settings: McpServeSettings) -> int:
    try:
        return asyncio.run(serve(settings))
    except KeyboardInterrupt:
        return 130
