"""Client sessions of `bosun mcp proxy`: one run per session, and each call's answer.

A session (stdio: the process; HTTP: the `Mcp-Session-Id` of a 2025-era client, else the
API key, for stateless 2026-07-28 clients) owns at most one live run of the proxy's agent.
Its first call submits the run and drives it here (`Runtime.drive`, the same driving a
worker does; the run is `running` while the session lives). Each call goes into the run's
`Channel`; the step loop takes it as the model's proposed call and governs it. The call's
outcome comes back from the journal: `Sessions.on_commit` is a listener of the runtime's
journal writer, so what the client is told is exactly what was journaled (a result, a
`ToolFailed` with its reason, a shadowed call, the run's end).

A call that needs approval parks the run (`waiting_approval`, nothing held but this
request). The request waits, with progress notifications, until a person decides
(`bosun approve`, the API, the console): the store's wake path queues the run, the driver
here claims it again and the loop executes (or refuses) the call. If nobody decides within
`approval_timeout`, the proxy denies the approval itself (audited like any denial) so the
call can never run behind the client's back, and the client gets a tool error saying so.

A run ended by an idle timeout or by the session closing (`succeeded`) is replaced by a new
one at the next call; a run ended by a kill switch, a limit or a cancel refuses the
session's later calls with that reason (reconnect to start again).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson
from mcp.types import AudioContent, CallToolResult, ImageContent, TextContent

from bosun.engine.runtime import Runtime
from bosun.errors import BosunError
from bosun.journal.events import (
    ApprovalRequested,
    ApprovalResolved,
    Event,
    RunFinished,
    RunNeedsAttention,
    ToolFailed,
    ToolFinished,
    ToolShadowed,
)
from bosun.server.keys import Principal
from bosun.server.mcp_proxy.config import Proxy
from bosun.server.mcp_proxy.model import Channel, ClientModel, Pending
from bosun.spec.vocab import RunStatus
from bosun.store.base import ApprovalConflict

log = logging.getLogger("bosun.mcp.proxy")
POLL_SECONDS = 0.1  # how often a parked session's run is checked for its wake
TICK_SECONDS = 0.25  # how often a waiting call looks at its approval (progress, timeout)
HEARTBEAT_SECONDS = 5.0  # progress while a call waits for a person
Progress = Callable[[str], Awaitable[None]]
_PARKED = frozenset({RunStatus.WAITING_APPROVAL, RunStatus.WAITING, RunStatus.PAUSED})


def error(text: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)


def answer_of(result: Any) -> CallToolResult:
    """A journaled tool result (what `tools/mcp/results.result_of` made of the upstream's
    answer) as the client's `CallToolResult`: structured content stays structured, text
    stays text, images and audio stay parts."""
    if isinstance(result, str):
        return CallToolResult(content=[TextContent(type="text", text=result)])
    if isinstance(result, dict):
        text = orjson.dumps(result).decode()
        return CallToolResult(
            content=[TextContent(type="text", text=text)], structured_content=result
        )
    if isinstance(result, list) and all(isinstance(p, dict) and "type" in p for p in result):
        parts: list[Any] = []
        for part in result:
            kind = part.get("type")
            if kind == "text":
                parts.append(TextContent(type="text", text=part.get("text", "")))
            elif kind == "image" and "data" in part:
                parts.append(ImageContent.model_validate(part))
            elif kind == "audio" and "data" in part:
                parts.append(AudioContent.model_validate(part))
            else:
                parts.append(TextContent(type="text", text=orjson.dumps(part).decode()))
        return CallToolResult(content=parts)
    return CallToolResult(content=[TextContent(type="text", text=orjson.dumps(result).decode())])


class Session:
    """One client session and its current run (see the module docstring)."""

    def __init__(self, sessions: Sessions, key: str, principal: Principal):
        self.sessions = sessions
        self.key = key
        self.principal = principal
        self.run_id: str | None = None
        self.channel: Channel | None = None
        self.ended: str | None = None  # why this session's calls are refused
        self.driver: asyncio.Task[None] | None = None
        self.last_used = time.monotonic()
        self._ids = itertools.count(1)
        self._starting = asyncio.Lock()

    async def _start(self) -> Channel:
        """A new run for this session, driven here from now on."""
        rt = self.sessions.runtime
        proxy = self.sessions.proxy
        run_id = await rt.submit(
            proxy.agent,
            f"MCP client session {self.key} through bosun mcp proxy {proxy.agent.name}",
            tenant=self.principal.tenant,
            user=self.principal.name,
            session=self.key,
            tags={"mcp_proxy": proxy.agent.name},
        )
        channel = Channel(idle_timeout=proxy.file.idle_timeout)
        self.sessions.model.channels[run_id] = channel
        self.sessions.by_run[run_id] = self
        claimed = await rt.store.claim_one(rt.owner, run_id, lease_seconds=rt.lease_seconds)
        if claimed is None:
            raise BosunError(f"run {run_id} was claimed by another worker before the proxy")
        self.run_id, self.channel = run_id, channel
        self.driver = asyncio.create_task(self._drive(run_id, claimed), name=f"proxy:{run_id}")
        return channel

    async def _drive(self, run_id: str, run: Any) -> None:
        rt = self.sessions.runtime
        try:
            while True:
                result = await rt.drive(run)
                if result.status not in _PARKED:
                    return
                while True:  # parked: wait for the store's wake path to queue it again
                    await asyncio.sleep(POLL_SECONDS)
                    row = await rt.store.get_run(run_id)
                    if row is None or row.status not in _PARKED:
                        break
                if row is None or row.status != RunStatus.QUEUED:
                    return
                run = await rt.store.claim_one(rt.owner, run_id, lease_seconds=rt.lease_seconds)
                if run is None:
                    self._fail_all(run_id, f"run {run_id} is being driven by another worker")
                    return
        except Exception as exc:  # a bug or a store failure: tell the waiting calls
            log.exception("MCP proxy: driving run %s failed", run_id)
            self._fail_all(run_id, f"the proxy could not drive run {run_id}: {exc}")
        finally:
            # Whatever is still unanswered will not be answered here (e.g. another worker
            # took the run after its approval): say so rather than leave the client waiting.
            self._fail_all(run_id, f"run {run_id} is no longer driven by this proxy session")
            if self.run_id == run_id and self.channel is not None:
                self.channel.closed = self.channel.closed or "its run is no longer driven here"
            self.sessions.model.channels.pop(run_id, None)

    def _fail_all(self, run_id: str, why: str) -> None:
        channel = self.sessions.model.channels.get(run_id)
        for pending in channel.calls.values() if channel else ():
            if not pending.done.done():
                pending.done.set_result(error(why))

    async def call(
        self, tool: str, arguments: dict[str, Any], progress: Progress
    ) -> CallToolResult:
        """Propose the client's call to the session's run; answer once it is journaled."""
        self.last_used = time.monotonic()
        async with self._starting:
            if self.ended is not None:
                return error(self.ended)
            channel = self.channel
            if channel is None or channel.closed is not None:
                channel = await self._start()
        pending = Pending(
            call_id=f"mcp_{next(self._ids)}",
            tool=tool,
            arguments=orjson.dumps(arguments).decode(),
            done=asyncio.get_running_loop().create_future(),
        )
        channel.put(pending)
        try:
            return await self._wait(pending, progress)
        finally:
            self.last_used = time.monotonic()

    async def _wait(self, pending: Pending, progress: Progress) -> CallToolResult:
        timeout = self.sessions.proxy.file.approval_timeout
        told: str | None = None
        beat = time.monotonic()
        while True:
            done, _ = await asyncio.wait({pending.done}, timeout=TICK_SECONDS)
            if done:
                return pending.done.result()
            approval = pending.approval_id
            if approval is None:
                continue
            now = time.monotonic()
            if told != approval or now - beat >= HEARTBEAT_SECONDS:
                told, beat = approval, now
                waited = now - (pending.approval_since or now)
                await progress(
                    f"{pending.tool} waits for approval {approval} (a {pending.approval_role}"
                    f" decides: `bosun approve {approval}` or `bosun deny {approval}`);"
                    f" {waited:.0f}s of {timeout:g}s"
                )
            if pending.approval_since is not None and now - pending.approval_since > timeout:
                return await self._time_out(pending, approval, timeout)

    async def _time_out(self, pending: Pending, approval: str, timeout: float) -> CallToolResult:
        """No decision in time: deny it (so it never runs later), tell the client."""
        why = f"no one decided within approval_timeout ({timeout:g}s)"
        with contextlib.suppress(ApprovalConflict):  # decided at the last moment: that stands
            await self.sessions.runtime.deny(
                approval, by=f"bosun mcp proxy {self.sessions.proxy.agent.name}", reason=why
            )
            pending.approval_since = None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(pending.done), 30.0)
            return error(
                f"{pending.tool} was not run: approval {approval} timed out ({why}); the"
                " proxy denied it, so it cannot run later. Ask again when someone can decide."
            )
        return await pending.done

    def observe(self, events: Sequence[Event]) -> None:
        """Answer the calls these committed events settle (called by `Sessions.on_commit`)."""
        channel = self.channel if self.run_id else None
        if channel is None:
            return
        refused: list[tuple[str, str]] = []
        # A call stopped by a kill switch or a cancel: the run's end says why.
        end = next((e.reason for e in events if isinstance(e, RunFinished)), None)
        for event in events:
            if isinstance(event, ToolFinished | ToolFailed | ToolShadowed | ApprovalRequested):
                pending = channel.calls.get(event.call_id)
                if pending is None or pending.done.done():
                    continue
                if isinstance(event, ToolFinished):
                    pending.done.set_result(answer_of(event.result))
                elif isinstance(event, ToolFailed):
                    why = f" ({end})" if end and event.error_type in ("killed", "cancelled") else ""
                    pending.done.set_result(error(f"{event.error_type}: {event.message}{why}"))
                elif isinstance(event, ToolShadowed):
                    pending.done.set_result(
                        error(
                            f"shadowed: Bosun recorded {event.tool} and did not run it"
                            " (a shadow rule or the observe autonomy level)"
                        )
                    )
                else:
                    pending.approval_id = event.approval_id
                    pending.approval_role = event.role
                    pending.approval_since = time.monotonic()
            elif isinstance(event, ApprovalResolved):
                pending = channel.calls.get(event.call_id)
                if event.decision != "approved":
                    refused.append(
                        (event.call_id, f"approval {event.approval_id} {event.decision}")
                    )
                elif pending is not None:  # decided: no more waiting for a person
                    pending.approval_id = pending.approval_since = None
            elif isinstance(event, RunNeedsAttention) and event.call_id:
                pending = channel.calls.get(event.call_id)
                if pending is not None and not pending.done.done():
                    pending.done.set_result(error(f"needs_attention: {event.reason}"))
            elif isinstance(event, RunFinished):
                self._ended(channel, event)
        for call_id, why in refused:  # expired: no ToolFailed follows
            pending = channel.calls.get(call_id)
            if pending is not None and not pending.done.done():
                pending.done.set_result(error(f"not run: {why}"))

    def _ended(self, channel: Channel, event: RunFinished) -> None:
        run_id = self.run_id
        if event.status != RunStatus.SUCCEEDED:
            self.ended = (
                f"this session's run {run_id} ended {event.status}: {event.reason}"
                " (reconnect to start a new session)"
            )
        channel.closed = channel.closed or event.reason
        for pending in channel.calls.values():
            if not pending.done.done():
                pending.done.set_result(
                    error(f"not run: run {run_id} ended {event.status}: {event.reason}")
                )

    async def close(self, why: str) -> None:
        """The client went away: end the run (`succeeded`), or cancel it if it is parked."""
        channel, run_id = self.channel, self.run_id
        if channel is None or run_id is None:
            return
        channel.close(why)
        row = await self.sessions.runtime.store.get_run(run_id)
        if row is not None and row.status in _PARKED:
            await self.sessions.runtime.cancel(run_id)
            self._fail_all(run_id, f"not run: the session closed ({why})")
        if self.driver is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self.driver), 10.0)


class Sessions:
    """The proxy's sessions by key, its client model, and its journal listener."""

    def __init__(self, runtime: Runtime, proxy: Proxy):
        self.runtime = runtime
        self.proxy = proxy
        self.model = ClientModel()
        self.by_key: dict[str, Session] = {}
        self.by_run: dict[str, Session] = {}
        runtime.register(proxy.agent, provider=self.model)
        runtime.journal.listen(self.on_commit)

    async def reap(self) -> list[str]:
        """End the runs a proxy process of this name left `running` when it died (SIGKILL,
        power loss), once their lease ran out; returns their ids. Each is claimed and driven
        like any resumed run: its model (the client) is gone, so it fails with
        `session_gone`, and a call it had started follows the durability rule (an
        idempotent one is retried, any other parks the run as needs_attention). A live
        proxy's runs hold their leases and are left alone. Called when the proxy starts."""
        rt = self.runtime
        ended: list[str] = []
        tag = ("mcp_proxy", self.proxy.agent.name)
        for run in await rt.store.list_runs(status=RunStatus.RUNNING, tag=tag, limit=10_000):
            claimed = await rt.store.claim_one(rt.owner, run.id, lease_seconds=rt.lease_seconds)
            if claimed is None:  # leased: a live proxy drives it
                continue
            await rt.drive(claimed)
            ended.append(run.id)
            log.warning("run %s of a proxy that stopped without closing it: ended", run.id)
        return ended

    def on_commit(self, run_id: str, first_seq: int, events: Sequence[Event]) -> None:
        session = self.by_run.get(run_id)
        if session is not None and session.run_id == run_id:
            session.observe(events)

    def session(self, key: str, principal: Principal) -> Session:
        found = self.by_key.get(key)
        if found is None or found.principal.tenant != principal.tenant:
            found = self.by_key[key] = Session(self, key, principal)
        return found

    async def close(self, why: str) -> None:
        for session in list(self.by_key.values()):
            await session.close(why)
        self.by_key.clear()


__all__ = ["Session", "Sessions", "answer_of", "error"]
