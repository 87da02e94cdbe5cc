"""Keep the leases of the runs this process is driving alive.

A lease is how workers share runs safely: the store hands a run to one owner
until its lease expires, and every append is fenced by it. One heartbeat task
per process extends all its leases every `lease_seconds / 3`; a run whose
lease was lost (another worker took it over) is told to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from bosun.errors import StoreError
from bosun.store.base import Store

log = logging.getLogger("bosun.leases")


class LeaseKeeper:
    def __init__(self, store: Store, owner: str, lease_seconds: float):
        self.store = store
        self.owner = owner
        self.lease_seconds = lease_seconds
        self._runs: dict[str, Callable[[], None]] = {}
        self._task: asyncio.Task[None] | None = None

    def add(self, run_id: str, on_lost: Callable[[], None]) -> None:
        self._runs[run_id] = on_lost
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._beat(), name=f"bosun-heartbeat-{self.owner}")

    def remove(self, run_id: str) -> None:
        self._runs.pop(run_id, None)

    async def _beat(self) -> None:
        while self._runs:
            await asyncio.sleep(self.lease_seconds / 3)
            ids = list(self._runs)
            try:
                kept = await self.store.heartbeat(self.owner, ids, self.lease_seconds)
            except StoreError as exc:
                log.warning("heartbeat failed, will retry: %s", exc)
                continue
            for run_id in ids:
                if run_id not in kept and run_id in self._runs:
                    log.warning("lease on run %s lost to another worker", run_id)
                    self._runs.pop(run_id)()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
