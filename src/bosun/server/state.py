"""What the server holds while it runs: the runtime, the agents it may run, live-update hub."""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from bosun.engine.runtime import Runtime
from bosun.engine.worker import Worker, WorkerHealth
from bosun.errors import BosunError
from bosun.server.hub import Hub
from bosun.server.liveness import Liveness
from bosun.spec.agent import Agent
from bosun.store.health import StoreHealth
from bosun.tools.execute import DEFAULT_TOOL_THREADS
from bosun.workflow.commands import load_target as load_agent  # agents and workflow files

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass
class Settings:
    db: str
    agents: list[str] = field(default_factory=list)  # agent files or module:attr references
    workers: bool = True  # run a worker in this process
    worker_concurrency: int = 200
    poll_interval: float = 0.1
    lease_seconds: float = 30.0
    tool_threads: int = DEFAULT_TOOL_THREADS  # sync tool bodies at once (bosun.tools.execute)
    auth_failures_per_minute: int = 20  # per client IP, shared by every server on the database
    session_seconds: float = 12 * 3600
    secure_cookies: bool = False  # set when served over HTTPS (behind a TLS proxy)
    create_first_admin: bool = True
    max_body_bytes: int = 1024 * 1024  # larger request bodies get 413 before they are read
    # Reverse proxies (IPs or CIDR networks) whose X-Forwarded-For is believed; from anyone
    # else the header is ignored and the client is the TCP peer.
    trusted_proxies: list[str] = field(default_factory=list)
    triggers: str | None = None  # a triggers file (`bosun serve --triggers FILE`)
    # A2A (docs/a2a.md): where clients reach us (agent cards name it; `bosun serve` fills it
    # from --host/--port), the address bound (public agents only on loopback), and whether
    # `a2a: {public: true}` holds on any address.
    public_url: str | None = None
    host: str = "127.0.0.1"
    a2a_public_anywhere: bool = False
    # A2A push webhooks on loopback addresses (tests, the TCK; docs/a2a.md) and the retry
    # schedule of deliveries: `attempts` tries, `backoff * 2**n` seconds apart.
    a2a_push_allow_loopback: bool = False
    a2a_push_attempts: int = 6
    a2a_push_backoff: float = 1.0


@dataclass
class ServerState:
    settings: Settings
    runtime: Runtime
    agents: dict[str, Agent]
    hub: Hub
    liveness: Liveness
    proxies: tuple[IPNetwork, ...] = ()  # Settings.trusted_proxies, parsed
    worker: Worker | None = None
    worker_task: asyncio.Task[None] | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    first_admin_key: str | None = None
    metrics: Any = None  # bosun.observe.metrics.Metrics, when prometheus-client is installed
    observer: Any = None
    blocked: dict[str, float] = field(default_factory=dict)  # client ip -> blocked until
    touched: dict[str, float] = field(default_factory=dict)  # key id -> last `last_used_at` write
    triggers: Any = None  # bosun.triggers.runner.Triggers, with `Settings.triggers`
    a2a_public: frozenset[str] = frozenset()  # agents callable over A2A without a key
    push: Any = None  # bosun.server.a2a.deliver.PushDispatcher (A2A push deliveries)
    push_task: asyncio.Task[None] | None = None

    def agent(self, name: str) -> Agent:
        agent = self.agents.get(name)
        if agent is None:
            known = ", ".join(sorted(self.agents)) or "none: start `bosun serve --agent FILE`"
            raise BosunError(f"no agent {name!r} is served here (agents: {known})")
        return agent

    def workers_alive(self) -> bool:
        if not self.settings.workers:
            return True
        return self.worker_task is not None and not self.worker_task.done()

    def worker_health(self) -> WorkerHealth | None:
        """The in-process worker's state (None when this server runs no worker). A worker
        task that ended (it is supervised: only at shutdown) reads as stopped."""
        if self.worker is None:
            return None
        if not self.workers_alive():
            self.worker.health.state = "stopped"
        return self.worker.health

    def store_health(self) -> StoreHealth | None:
        return getattr(self.runtime.store, "health", None)


def parse_proxies(entries: list[str]) -> tuple[IPNetwork, ...]:
    """`Settings.trusted_proxies` as networks; a clear error for an entry that is neither an
    address nor a network."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise BosunError(
                f"trusted proxy {entry!r} is not an IP address or network: use e.g. 10.0.0.7,"
                " 10.0.0.0/8 or fd00::/8 (--trusted-proxy, BOSUN_TRUSTED_PROXIES)"
            ) from None
    return tuple(networks)


def load_agents(targets: list[str]) -> dict[str, Agent]:
    agents: dict[str, Agent] = {}
    for target in targets:
        agent = load_agent(target)
        if agent.name in agents:
            raise BosunError(
                f"two agents are named {agent.name!r} ({agents[agent.name].source} and {target});"
                " rename one"
            )
        agents[agent.name] = agent
    return agents


def server_state(request: Request) -> ServerState:
    return request.app.state.bosun


async def state_of(request: Request) -> ServerState:
    """The dependency form (async, so FastAPI does not hop to a thread for it)."""
    return request.app.state.bosun
