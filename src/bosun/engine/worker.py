"""`Worker`: claim queued and orphaned runs from the shared store and drive them.

Any number of workers, in any number of processes, can share one database:
claims are leases, appends are fenced by them, and a run whose worker died is
claimed again once its lease expires, then continues from its journal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from bosun.engine.runtime import Runtime
from bosun.errors import BosunError
from bosun.store.base import RunRecord

log = logging.getLogger("bosun.worker")


class Worker:
    def __init__(
        self,
        runtime: Runtime,
        *,
        concurrency: int = 100,
        poll_interval: float = 0.5,
        shutdown_grace: float = 30.0,
    ):
        self.runtime = runtime
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.shutdown_grace = shutdown_grace
        self.active: dict[str, asyncio.Task[object]] = {}
        self.completed = 0
        self._wake = asyncio.Event()

    async def serve(
        self, stop: asyncio.Event | None = None, *, exit_when_idle: bool = False
    ) -> None:
        """Process runs until `stop` is set (or, with `exit_when_idle`, nothing is left to do)."""
        stop = stop or asyncio.Event()
        try:
            while not stop.is_set():
                await self.runtime.expire_approvals()
                claimed = await self.claim()
                if exit_when_idle and not claimed and not self.active:
                    return
                self._wake.clear()
                waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(self._wake.wait())]
                await asyncio.wait(
                    waiters, timeout=self.poll_interval, return_when="FIRST_COMPLETED"
                )
                for w in waiters:
                    w.cancel()
        finally:
            await self.shutdown()

    async def claim(self) -> list[RunRecord]:
        free = self.concurrency - len(self.active)
        if free <= 0:
            return []
        runs = await self.runtime.store.claim(
            self.runtime.owner, limit=free, lease_seconds=self.runtime.lease_seconds
        )
        for run in runs:
            if run.id in self.active:
                # Our own lease lapsed (the event loop stalled past `lease_seconds`) and we
                # claimed the run again: that only renewed the lease. Driving it twice under
                # one owner would pass the fence and repeat its steps.
                continue
            task = asyncio.create_task(self._drive(run), name=f"bosun-run-{run.id}")
            self.active[run.id] = task
        return runs

    async def _drive(self, run: RunRecord) -> None:
        try:
            result = await self.runtime.drive(run)
            log.info("run %s: %s (%s)", run.id, result.status, result.reason)
        except asyncio.CancelledError:
            log.warning("run %s: stopped (lease lost or worker shutting down)", run.id)
        except BosunError as exc:
            log.error("run %s: stopped: %s", run.id, exc)
        except Exception:
            log.exception("run %s: unexpected error; it will be resumed from its journal", run.id)
        finally:
            self.active.pop(run.id, None)
            self.completed += 1
            self._wake.set()

    async def shutdown(self) -> None:
        """Let in-flight steps finish (up to the grace period), then hand the runs back."""
        if not self.active:
            return
        self.runtime.stop_all()
        tasks = list(self.active.values())
        _, pending = await asyncio.wait(tasks, timeout=self.shutdown_grace)
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError):
                await task
