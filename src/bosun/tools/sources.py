"""Tool sources: where tools come from, and the one path every call goes through.

A *source* serves tools: Python functions today (`bosun.tools.python`), MCP servers,
other Bosun agents and remote A2A agents next. Each has the same small lifecycle:

    open()      connect (import a module, start a server, open a session); once per worker
    discover()  the definitions it serves now (`bosun.spec.definition.ToolDefinition`)
    invoke()    call one tool; raise `SourceUnavailable` when the connection broke
    close()     on shutdown (`Runtime.close`, and so a worker's)

`SourcePool` keeps the open sources of one Runtime by `(kind, identity)`: the first call
opens and discovers, later calls reuse it; a call that raises `SourceUnavailable` drops
the source, and the next use opens and discovers it again (a reconnect, which re-checks
every definition). Calls of a tool whose live definition is not the one its agent
version pinned are refused by the engine (`SourcePool.changed`; see docs/tools.md).

New kinds register a factory (`register_source_kind("mcp", McpSource)`); nothing else
in the engine changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from bosun.errors import BosunError, SourceUnavailable
from bosun.spec.definition import Pin, SourceSpec, ToolDefinition
from bosun.spec.tool import ToolContext

if TYPE_CHECKING:
    from bosun.tools.execute import Slot

log = logging.getLogger("bosun.tools")


class Call:
    """What a source gets with one attempt of one call: the tool's context (run, call and
    idempotency key, which a tool may see), its timeout (the source enforces it: the
    clock starts when the body or the request begins, never while it waits for a thread
    or a connection) and the thread reserved for it (Python sync tools; see `ToolPool`).

    The context may be given as a function that makes it: most calls never look at it
    (a Python tool without a context parameter), so the engine builds it, and the
    progress reporter inside it, only for a source that asks."""

    __slots__ = ("_context", "_make", "slot", "timeout")

    def __init__(
        self, context: ToolContext | Callable[[], ToolContext], timeout: float, slot: Slot
    ):
        if isinstance(context, ToolContext):
            self._context: ToolContext | None = context
            self._make: Callable[[], ToolContext] | None = None
        else:
            self._context, self._make = None, context
        self.timeout = timeout
        self.slot = slot

    @property
    def context(self) -> ToolContext:
        if self._context is None:
            assert self._make is not None
            self._context = self._make()
        return self._context


class ToolSource(Protocol):
    """Where tools come from (see the module docstring)."""

    spec: SourceSpec

    async def open(self) -> None: ...

    async def discover(self) -> list[ToolDefinition]: ...

    async def invoke(self, name: str, arguments: dict[str, Any], call: Call) -> Any: ...

    async def close(self) -> None: ...


SourceFactory = Callable[[SourceSpec], ToolSource]
_KINDS: dict[str, SourceFactory] = {}


def register_source_kind(kind: str, factory: SourceFactory) -> None:
    """Make `kind` a source kind: `factory(spec)` builds an (unopened) source for a spec.
    Registering a kind again replaces its factory (a test double, a newer client)."""
    if not kind or not kind.replace("-", "").replace("_", "").isalnum():
        raise BosunError(f"source kind {kind!r}: use letters, digits, '-' and '_'")
    _KINDS[kind] = factory


def source_kinds() -> tuple[str, ...]:
    return tuple(sorted(_KINDS))


class Watcher(Protocol):
    """Something a kind runs in every worker while runs are parked on its remote tasks
    (A2A: `tools/a2a/watcher.py`): `serve(stop)` until `stop` is set; `busy()` while a
    task it could settle is pending (a worker asked to exit when idle waits for it)."""

    async def busy(self) -> bool: ...

    async def serve(self, stop: asyncio.Event) -> None: ...


WatcherFactory = Callable[[Any, float], Watcher]  # (the worker's Runtime, its poll seconds)
_WATCHERS: dict[str, WatcherFactory] = {}


def register_watcher(kind: str, factory: WatcherFactory) -> None:
    """Have every worker run `factory(runtime, poll)`'s watcher (one per kind; registering
    a kind again replaces its factory)."""
    _WATCHERS[kind] = factory


def watchers(runtime: Any, poll: float) -> list[Watcher]:
    """A new watcher of each registered kind for a worker's `runtime`, polling about as
    often as the worker does (`poll` seconds)."""
    return [factory(runtime, poll) for _, factory in sorted(_WATCHERS.items())]


def build_source(spec: SourceSpec) -> ToolSource:
    factory = _KINDS.get(spec.kind)
    if factory is None:
        raise SourceUnavailable(
            f"no tool source kind {spec.kind!r} is registered here (known: "
            f"{', '.join(source_kinds()) or 'none'}); install or import the package that "
            "provides it in every worker"
        )
    return factory(spec)


class _Opened:
    """An open source and the digests of what it served when it was (re)opened."""

    __slots__ = ("digests", "fresh", "source")

    def __init__(self, source: ToolSource, definitions: list[ToolDefinition]):
        self.source = source
        self.digests = {d.name: d.digest for d in definitions}
        # A source that learns its list changed (an MCP server's list_changed notification)
        # has `fresh_definitions()`: the new list, or None when nothing changed since.
        self.fresh = getattr(source, "fresh_definitions", None)


class SourcePool:
    """The open tool sources of one Runtime (one worker), by `(kind, identity)`."""

    def __init__(self) -> None:
        self._open: dict[tuple[str, str], _Opened] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._warned: set[tuple[tuple[str, str], str, str | None]] = set()
        self.opens = 0  # sources opened (or reopened) so far: a reconnect counts once

    async def get(self, spec: SourceSpec) -> _Opened:
        """The open source for `spec`, opened and discovered on first use (or after it
        broke). Raises `SourceUnavailable` when it cannot be opened now."""
        opened = self._open.get(spec.key)
        if opened is not None:
            return opened
        lock = self._locks.setdefault(spec.key, asyncio.Lock())
        async with lock:  # runs sharing a worker open a source once, not once each
            opened = self._open.get(spec.key)
            if opened is None:
                opened = await self._connect(spec)
                self._open[spec.key] = opened
        return opened

    async def _connect(self, spec: SourceSpec) -> _Opened:
        source = build_source(spec)
        try:
            await source.open()
            definitions = await source.discover()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            with contextlib.suppress(Exception):
                await source.close()
            if isinstance(exc, SourceUnavailable):
                raise
            raise SourceUnavailable(
                f"tool source {spec.kind}:{spec.identity} could not be opened: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        self.opens += 1
        return _Opened(source, definitions)

    def unchanged(self, pin: Pin) -> bool:
        """True when the tool surely still is the pinned one without asking its source: the
        source is open, cannot change what it serves while open (no `fresh`: a Python
        function), and served the pinned definition. The step loop's fast path; anything
        else goes through `changed`."""
        opened = self._open.get(pin.source.key)
        return (
            opened is not None
            and opened.fresh is None
            and opened.digests.get(pin.served_name) == pin.digest
        )

    async def changed(self, pin: Pin) -> tuple[bool, str | None]:
        """(changed, live digest): whether the source now serves a definition of the tool
        other than the pinned one (live digest None: it serves no such tool any more).
        A pin without a digest (a version pinned before definitions were) is not checked."""
        opened = self._open.get(pin.source.key) or await self.get(pin.source)
        if not pin.digest:
            return False, None
        if opened.fresh is not None:
            try:
                fresh = await opened.fresh()
            except SourceUnavailable:
                await self._drop(pin.source.key, opened)
                raise
            if fresh is not None:
                opened.digests = {d.name: d.digest for d in fresh}
        live = opened.digests.get(pin.served_name)
        if live == pin.digest:
            return False, live
        seen = (pin.source.key, pin.served_name, live)
        if seen not in self._warned:  # once per worker and definition, not once per call
            self._warned.add(seen)
            log.warning(
                "tool %s of source %s:%s %s since the agent version pinned it (pinned %s,"
                " live %s): its calls are refused until a new version is registered",
                pin.served_name,
                pin.source.kind,
                pin.source.identity,
                "is no longer served" if live is None else "changed its definition",
                pin.digest[:12],
                (live or "-")[:12],
            )
        return True, live

    async def refresh(self, spec: SourceSpec) -> None:
        """Discover an open source's tools again (an MCP server said its list changed):
        later `changed` checks compare against what it serves now."""
        opened = await self.get(spec)
        try:
            definitions = await opened.source.discover()
        except SourceUnavailable:
            await self._drop(spec.key, opened)
            raise
        opened.digests = {d.name: d.digest for d in definitions}

    async def invoke(self, pin: Pin, arguments: dict[str, Any], call: Call) -> Any:
        """Call the tool on its (open) source. A `SourceUnavailable` drops the source, so
        the next use reconnects and discovers again."""
        opened = self._open.get(pin.source.key) or await self.get(pin.source)
        try:
            return await opened.source.invoke(pin.served_name, arguments, call)
        except SourceUnavailable:
            await self._drop(pin.source.key, opened)
            raise

    async def cancel_remote(self, pin: Pin, key: str) -> bool:
        """Cancel the remote task a wait of this tool is on (its run ended: cancelled,
        killed, finished), when the tool's source can (`cancel_remote(key)`); False
        otherwise. Never raises: the run ends either way."""
        try:
            opened = self._open.get(pin.source.key) or await self.get(pin.source)
            cancel = getattr(opened.source, "cancel_remote", None)
            return bool(cancel is not None and await cancel(key))
        except Exception as exc:
            log.warning("cancelling remote task %s of %s failed: %s", key, pin.served_name, exc)
            return False

    async def _drop(self, key: tuple[str, str], opened: _Opened) -> None:
        if self._open.get(key) is opened:
            del self._open[key]
            with contextlib.suppress(Exception):
                await opened.source.close()

    async def close(self) -> None:
        """Close every open source (Runtime shutdown); a failing close is logged, not raised."""
        opened, self._open = self._open, {}
        for key, entry in opened.items():
            try:
                await entry.source.close()
            except Exception as exc:  # one broken source must not keep the others open
                log.warning("closing tool source %s:%s failed: %s", key[0], key[1], exc)


__all__ = [
    "Call",
    "SourcePool",
    "ToolSource",
    "build_source",
    "register_source_kind",
    "register_watcher",
    "source_kinds",
    "watchers",
]
