"""The MCP client as the model of a proxy's run: its `tools/call`s are the run's tool calls.

This is the seam the proxy uses to reach the engine's one governance path without a side
door: each client session is a run of the proxy's agent, driven by the ordinary step loop
(`engine/loop.py`), whose "model turn" waits for the client's next call. The loop then does
what it does for any model's proposed call: validate the arguments against the pinned
schema, check kill switches, decide (policy, autonomy, rate limits, taint), park for
approval, execute through the tool source pool, journal every fact. What the call ended
with reaches the waiting client through a journal listener (`sessions.py`), never by a
second reading of policy.

A `Channel` is one run's queue of client calls. `ClientModel` (one per proxy, the provider
the runtime uses for the proxy's agent) finds a run's channel by its id; a run with no
channel in this process (resumed by some other worker after the proxy went away) fails
with a model error, since no client is there to make its calls.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from bosun.errors import ModelError
from bosun.models.base import ModelRequest, ModelResponse, ToolCall
from bosun.models.registry import register_provider
from bosun.spec.model import ModelSpec

CLIENT_PROVIDER = "mcp_client"  # the model of a proxy's agent: the MCP client's calls
MODEL = "mcp-client"


@dataclass
class Pending:
    """One client call: proposed to the run, answered when its outcome is journaled."""

    call_id: str
    tool: str
    arguments: str  # JSON text, as the loop takes a model's
    done: asyncio.Future[Any]
    approval_id: str | None = None
    approval_role: str | None = None
    approval_since: float | None = None


@dataclass
class Channel:
    """The client calls of one run, in the order the client sent them."""

    idle_timeout: float
    queue: asyncio.Queue[Pending | None] = field(default_factory=asyncio.Queue)
    calls: dict[str, Pending] = field(default_factory=dict)
    closed: str | None = None  # why this run takes no more calls (idle, session closed)

    def put(self, pending: Pending) -> None:
        self.calls[pending.call_id] = pending
        self.queue.put_nowait(pending)

    def close(self, why: str) -> None:
        if self.closed is None:
            self.closed = why
        self.queue.put_nowait(None)

    async def next_turn(self) -> ModelResponse:
        """The client's next calls (all it has sent by now), or the end of the session."""
        if self.closed is None:
            try:
                first = await asyncio.wait_for(self.queue.get(), self.idle_timeout)
            except TimeoutError:
                self.closed = f"no call for {self.idle_timeout:g}s: the session idled out"
                first = None
        else:
            first = None
        calls = [first] if first is not None else []
        while first is not None and not self.queue.empty():
            more = self.queue.get_nowait()
            if more is None:
                break
            calls.append(more)
        if not calls:
            return ModelResponse(content=f"MCP client session ended: {self.closed}", model=MODEL)
        return ModelResponse(
            content=None,
            tool_calls=tuple(ToolCall(p.call_id, p.tool, p.arguments) for p in calls),
            model=MODEL,
            finish_reason="tool_calls",
        )


class ClientModel:
    """The provider of a proxy's agent: each run's turns come from its channel."""

    provider = CLIENT_PROVIDER

    def __init__(self) -> None:
        self.model = MODEL
        self.channels: dict[str, Channel] = {}

    async def complete(self, request: ModelRequest) -> ModelResponse:
        channel = self.channels.get(request.run_id)
        if channel is None:
            raise ModelError(
                f"run {request.run_id} is an MCP proxy session's, and its session is not in"
                " this process (the proxy stopped): no client is there to make its calls",
                error_type="session_gone",
            )
        return await channel.next_turn()


class _Absent:
    """What the `mcp_client` provider is anywhere but inside `bosun mcp proxy`."""

    provider = CLIENT_PROVIDER

    def __init__(self, spec: ModelSpec):
        self.model = spec.name

    async def complete(self, request: ModelRequest) -> ModelResponse:
        raise ModelError(
            f"run {request.run_id} is driven by an MCP client through `bosun mcp proxy`;"
            " a worker cannot continue it without that client",
            error_type="session_gone",
        )


register_provider(CLIENT_PROVIDER, _Absent, offline=True)

__all__ = ["CLIENT_PROVIDER", "MODEL", "Channel", "ClientModel", "Pending"]
