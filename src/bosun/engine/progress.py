"""Progress of a running tool call, journaled without flooding the journal.

A tool reports progress through `ToolContext.progress` (an MCP server's progress
notifications arrive that way, `tools/mcp/source.py`). Servers may send one every few
milliseconds; the journal gets a `ToolProgress` for the first report at once, then at most
one every `every` seconds (the latest report when it is due), and the latest unjournaled
one just before the call's result. So a call of any length adds at most
`2 + duration / every` events, and the console (a journal listener) sees it move.

The periodic event is committed while the call runs. That is safe because nothing else
in the run appends meanwhile (the loop awaits the call); `close()` waits for a commit in
flight before the loop goes on, and only cancels a flush still waiting for its time.
Each report is also a debug line in the worker's log (`bosun.engine.progress`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable

from bosun.journal.events import Event, ToolProgress

log = logging.getLogger("bosun.engine.progress")

PROGRESS_EVERY = 5.0  # seconds between two progress events of one call (after the first)
MESSAGE_CHARS = 200  # a report's message is kept to this many characters


class CallProgress:
    """The progress reporter of one call attempt (see the module docstring)."""

    def __init__(
        self,
        call_id: str,
        tool: str,
        record: Callable[[Event], None],
        commit: Callable[[], Awaitable[None]],
        every: float = PROGRESS_EVERY,
    ):
        self.call_id, self.tool = call_id, tool
        self._record, self._commit, self.every = record, commit, every
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._latest: tuple[float, float | None, str] | None = None
        self._journaled_at = -math.inf
        self._task: asyncio.Task[None] | None = None
        self._waiting = False  # the flush task is still sleeping (safe to cancel)
        self._closed = False
        self.reports = 0  # received in all
        self._unjournaled = 0  # received since the last event

    def report(
        self, progress: float, total: float | None = None, message: str | None = None
    ) -> None:
        """Take one report (from any thread); never raises into the tool."""
        if threading.get_ident() != self._thread:
            self._loop.call_soon_threadsafe(self.report, progress, total, message)
            return
        if self._closed:
            return
        try:
            value = float(progress)
            limit = None if total is None else float(total)
        except (TypeError, ValueError):
            return
        self.reports += 1
        self._unjournaled += 1
        self._latest = (value, limit, (message or "")[:MESSAGE_CHARS])
        log.debug(
            "call %s (%s): progress %g%s%s",
            self.call_id,
            self.tool,
            value,
            "" if limit is None else f"/{limit:g}",
            f": {message}" if message else "",
        )
        if self._task is None:
            delay = max(0.0, self._journaled_at + self.every - time.monotonic())
            self._waiting = True
            self._task = self._loop.create_task(self._flush(delay))

    def _event(self) -> ToolProgress | None:
        latest, self._latest = self._latest, None
        if latest is None:
            return None
        progress, total, message = latest
        reports, self._unjournaled = self._unjournaled, 0
        return ToolProgress(
            call_id=self.call_id,
            tool=self.tool,
            progress=progress,
            total=total,
            message=message,
            reports=reports,
        )

    async def _flush(self, delay: float) -> None:
        try:
            if delay > 0:
                await asyncio.sleep(delay)
            self._waiting = False
            event = self._event()
            if event is not None:
                self._record(event)
                self._journaled_at = time.monotonic()
                await self._commit()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the call's own commit will surface a store problem
            log.info("call %s: progress not journaled: %s", self.call_id, exc)
        finally:
            self._task = None
        if self._latest is not None and not self._closed:  # reported during the commit
            self._waiting = True
            delay = max(0.0, self._journaled_at + self.every - time.monotonic())
            self._task = self._loop.create_task(self._flush(delay))

    def stop(self) -> bool:
        """The call ended: take no more reports. True when `close()` has work to do (most
        calls report nothing, and then the loop awaits nothing more per call)."""
        self._closed = True
        return self._task is not None or self._latest is not None

    async def close(self) -> None:
        """After `stop()`: wait for a commit in flight, drop a flush not yet due, and record
        (not commit: the call's result follows) the latest report not journaled yet."""
        self._closed = True
        task = self._task
        if task is not None:
            if self._waiting:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        event = self._event()
        if event is not None:
            self._record(event)


__all__ = ["PROGRESS_EVERY", "CallProgress"]
