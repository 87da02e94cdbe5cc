"""`Worker`: claim queued and orphaned runs from the shared store and drive them.

Any number of workers, in any number of processes, can share one database:
claims are leases, appends are fenced by them, and a run whose worker died is
claimed again once its lease expires, then continues from its journal.

A worker outlives its database's outages. A poll that fails (the database is
unreachable, or full) is logged once per outage, counted, and tried again with
backoff (0.1 s doubling to 5 s, with jitter); when one succeeds again the
worker logs how long the outage lasted and carries on. A run whose step failed
on the store is handed back and claimed again once the store answers, then
resumes from its journal like any interrupted run: what was committed is
never done again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from bosun.engine.runtime import Runtime
from bosun.errors import BosunError, LeaseLost, StoreError, StoreUnavailable
from bosun.store.base import RunRecord
from bosun.store.health import Backoff
from bosun.tools.sources import watchers as watchers_of

log = logging.getLogger("bosun.worker")

RUNNING, BACKING_OFF, STOPPED = "running", "backing_off", "stopped"


@dataclass
class WorkerHealth:
    """What `/readyz` and `/metrics` say about a worker."""

    state: str = STOPPED  # running | backing_off | stopped
    since: float | None = None  # epoch seconds: when the current state began
    last_error: str | None = None  # kept after recovery, for the record
    poll_errors: int = 0  # polls (claim, approval expiry) that failed, ever
    run_errors: int = 0  # runs whose step failed on the store (each resumes later)
    restarts: int = 0  # times `supervise` started a worker loop that had died
    outage_polls: int = 0  # failed polls in the current outage

    def enter(self, state: str) -> None:
        self.state, self.since = state, time.time()


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
        self.health = WorkerHealth()
        # Runs whose drive failed on the store, so their lease may still be ours: handed
        # back at the next poll that works, so they need not wait for the lease to expire.
        self._to_release: set[str] = set()
        self._wake = asyncio.Event()

    @property
    def store_errors(self) -> dict[str, int]:
        """Store failures this worker survived, by where they happened."""
        return {
            "poll": self.health.poll_errors,
            "run": self.health.run_errors,
            "heartbeat": self.runtime.leases.failures,
        }

    def start(self, stop: asyncio.Event) -> asyncio.Task[None]:
        """`supervise` in a task of its own (how `bosun serve` runs its worker)."""
        self.health.enter(RUNNING)
        return asyncio.create_task(self.supervise(stop), name=f"bosun-worker-{self.runtime.owner}")

    async def supervise(self, stop: asyncio.Event) -> None:
        """`serve` until `stop` is set, started again if it ever ends with an error.

        `serve` survives every failure it can see, so this is the last line of defence:
        a server whose worker loop died must not keep accepting runs nobody will drive.
        Runs in flight keep going meanwhile; the new loop carries on with them.
        """
        backoff = Backoff()
        while True:
            try:
                await self.serve(stop)
                return
            except Exception:
                self.health.restarts += 1
                log.exception(
                    "worker %s: its loop stopped unexpectedly; starting it again (restart %d)",
                    self.runtime.owner,
                    self.health.restarts,
                )
            if await _stopped(stop, backoff.next()):
                return

    async def serve(
        self, stop: asyncio.Event | None = None, *, exit_when_idle: bool = False
    ) -> None:
        """Process runs until `stop` is set (or, with `exit_when_idle`, nothing is left to do)."""
        stop = stop or asyncio.Event()
        backoff = Backoff()
        self.health.enter(RUNNING)
        crashed = False
        # The watchers of source kinds with remote tasks (A2A): they settle the waits of
        # runs parked here or anywhere, one worker per run (leased; `tools/a2a/watcher.py`).
        watching = asyncio.Event()
        watchers = [
            (w, asyncio.create_task(w.serve(watching)))
            for w in watchers_of(self.runtime, self.poll_interval)
        ]
        try:
            while not stop.is_set():
                try:
                    await self._release_handed_back()
                    await self.runtime.expire_approvals()
                    await self.runtime.sweep_waits()  # timers, deadlines: no worker waits on them
                    await self.runtime.wake_killed()  # parked runs a kill switch covers
                    claimed = await self.claim()
                except Exception as exc:
                    self._poll_failed(exc)
                    if await _stopped(stop, backoff.next()):
                        return
                    continue
                if self.health.state == BACKING_OFF:
                    self._recovered()
                    backoff.reset()
                idle = exit_when_idle and not claimed and not self.active
                if idle and not [w for w, _ in watchers if await w.busy()]:
                    return
                self._wake.clear()
                waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(self._wake.wait())]
                await asyncio.wait(
                    waiters, timeout=self.poll_interval, return_when="FIRST_COMPLETED"
                )
                for w in waiters:
                    w.cancel()
        except Exception:
            crashed = True
            raise
        finally:
            self.health.enter(STOPPED)
            watching.set()
            for _, task in watchers:
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await asyncio.wait_for(task, 5.0)
            if not crashed:  # after a crash, runs in flight go on (see `supervise`)
                await self.shutdown()

    def _poll_failed(self, exc: Exception) -> None:
        """Count the failure; log the first of an outage, with its error (not every retry)."""
        health = self.health
        health.poll_errors += 1
        health.outage_polls += 1
        health.last_error = f"{type(exc).__name__}: {exc}"
        if health.state != BACKING_OFF:
            health.enter(BACKING_OFF)
            if isinstance(exc, StoreError):
                log.error(
                    "worker %s: the database failed; backing off (up to 5 s between tries)"
                    " until it answers. Runs in flight keep their journal and continue when"
                    " it is back. The error: %s",
                    self.runtime.owner,
                    exc,
                )
            else:
                log.exception(
                    "worker %s: a poll failed unexpectedly; backing off", self.runtime.owner
                )

    def _recovered(self) -> None:
        health = self.health
        log.warning(
            "worker %s: the database answers again after %.1fs (%d failed polls; last error: %s)",
            self.runtime.owner,
            time.time() - (health.since or time.time()),
            health.outage_polls,
            health.last_error,
        )
        health.enter(RUNNING)
        health.outage_polls = 0

    async def _release_handed_back(self) -> None:
        """Give back the leases of runs whose drive failed on the store (a database still
        away fails the poll, which backs off; any other error leaves the lease to expire)."""
        for run_id in list(self._to_release):
            if run_id not in self.active:  # not claimed again meanwhile
                try:
                    await self.runtime.store.release(run_id, self.runtime.owner)
                except StoreUnavailable:
                    raise
                except StoreError as exc:
                    log.error("run %s: could not hand its lease back (it expires): %s", run_id, exc)
            self._to_release.discard(run_id)

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
        except LeaseLost as exc:
            log.warning("run %s: stopped: %s", run.id, exc)
        except StoreError as exc:
            self.health.run_errors += 1
            self.health.last_error = f"{type(exc).__name__}: {exc}"
            self._to_release.add(run.id)
            log.warning(
                "run %s: interrupted by a database failure; it resumes from its journal when"
                " the database is back: %s",
                run.id,
                exc,
            )
        except BosunError as exc:
            log.error("run %s: stopped: %s", run.id, exc)
        except Exception:
            log.exception("run %s: unexpected error; it will be resumed from its journal", run.id)
        finally:
            self.active.pop(run.id, None)
            self.completed += 1
            self._wake.set()

    def wake(self) -> None:
        """Look for runs now rather than at the next poll (an edge in this process has just
        queued or woken one)."""
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


async def _stopped(stop: asyncio.Event, delay: float) -> bool:
    """Wait `delay` seconds, or less if `stop` is set; whether it was."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), delay)
    return stop.is_set()
