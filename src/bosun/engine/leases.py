"""Keep the leases of the runs this process is driving alive.

A lease is how workers share runs safely: the store hands a run to one owner
until its lease expires, and every append is fenced by it. One heartbeat task
per process extends all its leases every `lease_seconds / 3`; a run whose
lease was lost (another worker took it over) is told to stop.

A heartbeat that fails (the database is down) is tried again soon, with backoff
up to the usual period, so a short outage costs no lease. If the outage outlasts
the lease, nothing breaks either: another worker may claim the run, and the
fence refuses this one's appends (`LeaseLost`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from bosun.errors import StoreError
from bosun.store.base import Store
from bosun.store.health import Backoff

log = logging.getLogger("bosun.leases")


class LeaseKeeper:
    def __init__(self, store: Store, owner: str, lease_seconds: float):
        self.store = store
        self.owner = owner
        self.lease_seconds = lease_seconds
        self.failures = 0  # heartbeats that failed, ever (`bosun_worker_store_errors_total`)
        self.failing_since: float | None = None  # the current outage, if any
        self._runs: dict[str, Callable[[], None]] = {}
        self._task: asyncio.Task[None] | None = None

    def add(self, run_id: str, on_lost: Callable[[], None]) -> None:
        self._runs[run_id] = on_lost
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._beat(), name=f"bosun-heartbeat-{self.owner}")

    def remove(self, run_id: str) -> None:
        self._runs.pop(run_id, None)

    async def _beat(self) -> None:
        period = self.lease_seconds / 3
        backoff = Backoff(first=min(0.1, period), cap=period)
        delay = period
        while self._runs:
            await asyncio.sleep(delay)
            ids = list(self._runs)
            try:
                kept = await self.store.heartbeat(self.owner, ids, self.lease_seconds)
            except Exception as exc:  # whatever failed, the leases still need renewing
                self._failed(exc, len(ids))
                delay = backoff.next()
                continue
            if self.failing_since is not None:
                log.warning(
                    "heartbeats renew the leases of %d runs again, after %.1fs of failures",
                    len(ids),
                    time.time() - self.failing_since,
                )
                self.failing_since = None
            backoff.reset()
            delay = period
            for run_id in ids:
                if run_id not in kept and run_id in self._runs:
                    log.warning("lease on run %s lost to another worker", run_id)
                    self._runs.pop(run_id)()

    def _failed(self, exc: Exception, runs: int) -> None:
        """Count every failure; log the first of an outage (not one line per retry)."""
        self.failures += 1
        if self.failing_since is not None:
            return
        self.failing_since = time.time()
        if isinstance(exc, StoreError):
            log.warning(
                "heartbeat for %d runs failed, retrying with backoff: %s "
                "(the runs keep going; their appends are fenced if a lease runs out)",
                runs,
                exc,
            )
        else:
            log.exception("heartbeat for %d runs failed unexpectedly; retrying", runs)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
