"""The `mcp` tool source: the tools of one MCP server, for every run of a worker.

Opened once per worker by the `SourcePool` (connect with backoff, negotiate, list), it
serves three things the kernel relies on (docs/tools.md, docs/mcp.md):

- `discover()`: what the server serves now, as definitions whose digests the agent
  version pinned; the same tool always gives the same definition;
- `fresh_definitions()`: after the server said its list changed (debounced: a burst of
  notifications is one re-list), the new list, so the pool's check before each call
  compares the pinned digest with what the server serves *now* and the kernel refuses a
  changed tool (`definition_changed`); None when nothing changed (no I/O);
- `invoke()`: one `tools/call` within the call's timeout, with a progress token: the
  server's progress notifications go to the call's `ToolContext.progress` (journaled
  coalesced by the engine, `engine/progress.py`). A dropped connection raises
  `SourceUnavailable` (`sent=True` once the request may have left), so the pool
  reconnects on next use and the engine applies the durability rule (an idempotent tool
  is sent again, anything else parks the run); a timeout is `TimeoutError`, a tool error
  event like any other.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from bosun.errors import SourceUnavailable
from bosun.spec.definition import SourceSpec, ToolDefinition
from bosun.spec.mcp import McpServer
from bosun.tools.mcp.auth import McpUnauthorized, oauth_provider, tokens_for
from bosun.tools.mcp.connection import Connection, describe
from bosun.tools.mcp.results import definition_of, result_of
from bosun.tools.sources import Call

log = logging.getLogger("bosun.tools.mcp")

# The call's idempotency key, in the request's `_meta`: the same on every attempt of one
# call (a retry after a dropped connection too), so a server can do the work once.
IDEMPOTENCY_META = "dev.bosun/idempotency-key"
DEBOUNCE_SECONDS = 0.05  # notifications this close together are one re-list
MAX_PAGES = 100  # a tools/list that never stops paginating cannot hang a worker


def _lost(exc: BaseException) -> bool:
    """Whether `exc` means the connection is gone (rather than the call failing)."""
    from mcp.shared.exceptions import MCPError
    from mcp_types.jsonrpc import CONNECTION_CLOSED

    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, MCPError):
        return exc.code == CONNECTION_CLOSED
    import anyio

    transport_errors: tuple[type[BaseException], ...] = (
        OSError,
        EOFError,
        anyio.ClosedResourceError,
        anyio.BrokenResourceError,
        anyio.EndOfStream,
    )
    try:
        import httpx2

        transport_errors += (httpx2.TransportError,)
    except ImportError:  # pragma: no cover - a dependency of mcp
        pass
    return isinstance(exc, transport_errors)


def _session_gone(exc: BaseException) -> bool:
    """A 2025-era HTTP server that no longer knows the session (it restarted): it answers
    404, which the SDK reports as `INVALID_REQUEST` "Session not found/terminated". The
    request was refused unread, so it surely did not run; a new connection is needed."""
    from mcp.shared.exceptions import MCPError
    from mcp_types.jsonrpc import INVALID_REQUEST

    return (
        isinstance(exc, MCPError)
        and exc.code == INVALID_REQUEST
        and "session" in str(exc).lower()
        and any(word in str(exc).lower() for word in ("not found", "terminated", "expired"))
    )


class McpSource:
    """One MCP server as a tool source (see the module docstring)."""

    def __init__(self, spec: SourceSpec):
        self.spec = spec
        self.server = McpServer.model_validate(spec.config["server"])
        self.trusted = bool(spec.config.get("trusted", False))
        self._conn: Connection | None = None
        self._dirty = False  # the server said its list changed; not re-listed yet
        self._pending: list[ToolDefinition] | None = None  # re-listed, not handed to the pool
        self._handed: dict[str, str] = {}  # digests the pool last got from us
        self._latest: dict[str, str] = {}  # digests of the latest list
        self._relisting = asyncio.Lock()
        # OAuth (`auth: {oauth: ...}`): the provider (kept across reconnects of this
        # source) and the process's token storage for this entry (memory only).
        self._auth: Any = None

    @property
    def label(self) -> str:
        return self.server.label

    async def open(self) -> None:
        """Connect, retrying with doubling backoff (a server restarting, a port not yet
        listening); `SourceUnavailable` after the last attempt."""
        if self.server.auth is not None and self._auth is None:
            self._auth = oauth_provider(self.server, tokens_for(self.spec.key))
        delay = self.server.reconnect_backoff
        for attempt in range(1, self.server.connect_attempts + 1):
            conn = Connection(self.server, self._changed, self._auth)
            try:
                await conn.open()
            except SourceUnavailable as exc:
                if attempt == self.server.connect_attempts:
                    raise
                log.info("MCP server %s: connect attempt %d failed: %s", self.label, attempt, exc)
                await asyncio.sleep(delay)
                delay *= 2
                continue
            self._conn = conn
            return

    def _changed(self) -> None:
        self._dirty = True

    async def _list(self) -> list[ToolDefinition]:
        conn = self._connected(sent=False)
        tools: list[Any] = []
        cursor = None
        try:
            async with asyncio.timeout(self.server.connect_timeout):
                for _ in range(MAX_PAGES):
                    page = await conn.client.list_tools(cursor=cursor)
                    tools.extend(page.tools)
                    cursor = page.next_cursor
                    if not cursor:
                        break
        except TimeoutError:
            raise SourceUnavailable(
                f"MCP server {self.label} did not list its tools within connect_timeout "
                f"({self.server.connect_timeout:g}s)"
            ) from None
        except Exception as exc:
            if _lost(exc) or _session_gone(exc):
                conn.lost = True
            refused = conn.refused()
            if refused is not None:
                raise SourceUnavailable(f"{refused} (listing its tools)") from exc
            raise SourceUnavailable(
                f"MCP server {self.label}: listing its tools failed: {describe(exc)}"
            ) from exc
        definitions = [definition_of(t, self.spec, self.trusted) for t in tools]
        self._latest = {d.name: d.digest for d in definitions}
        return definitions

    async def discover(self) -> list[ToolDefinition]:
        self._dirty = False
        definitions = await self._list()
        self._handed, self._pending = dict(self._latest), None
        return definitions

    async def _relist(self) -> None:
        async with self._relisting:
            if not self._dirty:
                return  # another caller re-listed while we waited
            await asyncio.sleep(DEBOUNCE_SECONDS)
            self._dirty = False  # a notification during the list sets it again
            self._pending = await self._list()

    async def fresh_definitions(self) -> list[ToolDefinition] | None:
        """The re-listed definitions since the pool last asked, or None (see the module
        docstring). Costs nothing while the server reports no change."""
        if self._dirty:
            await self._relist()
        pending, self._pending = self._pending, None
        if pending is not None:
            self._handed = {d.name: d.digest for d in pending}
        return pending

    def _connected(self, *, sent: bool) -> Connection:
        conn = self._conn
        if conn is None or conn.lost:
            raise SourceUnavailable(
                f"MCP server {self.label}: the connection was lost; it is reopened on next use",
                sent=sent,
            )
        return conn

    async def invoke(self, name: str, arguments: dict[str, Any], call: Call) -> Any:
        if self._dirty:  # a change arrived after the pool's check: check this tool again
            await self._relist()
            if self._latest.get(name) != self._handed.get(name):
                raise SourceUnavailable(
                    f"MCP server {self.label} changed tool {name} just before this call, so it "
                    "was not sent; the change is checked against the agent's pinned version "
                    "on the next call"
                )
        conn = self._connected(sent=False)
        try:
            async with asyncio.timeout(call.timeout):
                result = await conn.client.call_tool(
                    name,
                    arguments,
                    meta={IDEMPOTENCY_META: call.context.idempotency_key},
                    progress_callback=_progress_of(call),
                )
        except TimeoutError:
            raise
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            refused = conn.refused()
            if refused is not None:  # refused before it ran: the model is told why
                conn.lost = conn.lost or _lost(exc)
                raise McpUnauthorized(f"{refused}; {name} was not run") from exc
            if _session_gone(exc):
                conn.lost = True
                raise SourceUnavailable(
                    f"MCP server {self.label} no longer knows this session (it restarted); "
                    f"{name} was not run, and the connection is reopened on next use"
                ) from exc
            if _lost(exc):
                conn.lost = True
                raise SourceUnavailable(
                    f"MCP server {self.label}: the connection dropped during {name}: "
                    f"{describe(exc)}",
                    sent=True,
                ) from exc
            raise _call_error(name, exc) from exc
        return result_of(result, self.server.max_result_chars)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()


def _progress_of(call: Call) -> Any:
    """The SDK's progress callback for a call whose context takes progress (asking for it
    makes the SDK send a progress token); None otherwise (no token is sent)."""
    report = call.context.progress
    if report is None:
        return None

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        report(progress, total, message)

    return on_progress


def _call_error(name: str, exc: BaseException) -> BaseException:
    """A protocol error as a tool error; bad arguments (`-32602`) as the caller's fault."""
    from mcp.shared.exceptions import MCPError
    from mcp_types.jsonrpc import INVALID_PARAMS

    if isinstance(exc, MCPError) and exc.code == INVALID_PARAMS:
        return ValueError(f"{name}: {exc}")
    return exc


__all__ = ["McpSource"]
