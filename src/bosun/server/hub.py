"""Live updates: who wants to hear that a run changed, and telling them.

The runtime's journal writer calls `Hub.listener` with every committed batch of events
(see `bosun.engine.journal`: the loop, resolve, rollback and the watchdog all append
through it), on the event loop, off the step's hot path: it only
records the run id and sets a flag. Subscribers (Server-Sent Event streams)
wake up and read what changed from the store themselves, so a slow browser
never holds up a run, and nothing is lost if a wake-up is coalesced.

Runs driven by other processes (a `bosun worker` on the same PostgreSQL)
commit no events here: streams also re-read the store every few seconds.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Sequence

from bosun.journal.events import Event, RunStarted
from bosun.store.base import Store

_TENANT_CACHE = 50_000


class Subscription:
    def __init__(self, tenant: str, run_id: str | None):
        self.tenant = tenant
        self.run_id = run_id
        self.changed = asyncio.Event()

    async def wait(self, timeout: float) -> bool:
        """True if something changed (then clears the flag), False on timeout."""
        try:
            await asyncio.wait_for(self.changed.wait(), timeout)
        except TimeoutError:
            return False
        self.changed.clear()
        return True


class Hub:
    def __init__(self, store: Store):
        self.store = store
        self._subs: set[Subscription] = set()
        self._tenants: OrderedDict[str, str] = OrderedDict()  # run id -> tenant
        self._dirty: set[str] = set()
        self._scheduled = False
        self.stopping = asyncio.Event()

    # -- producers -----------------------------------------------------------

    def listener(self, run_id: str, first_seq: int, events: Sequence[Event]) -> None:
        """A `CommitListener`: cheap, synchronous, never raises."""
        for event in events:
            if isinstance(event, RunStarted):
                self._remember(run_id, event.tenant)
        if not self._subs:
            return
        self._dirty.add(run_id)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(self._deliver()))

    def poke(self, tenant: str, run_id: str | None = None) -> None:
        """Something of `tenant` changed outside the journal (an approval, a kill switch)."""
        for sub in list(self._subs):
            if sub.tenant == tenant and (sub.run_id is None or sub.run_id == run_id):
                sub.changed.set()

    async def _deliver(self) -> None:
        self._scheduled = False
        dirty, self._dirty = self._dirty, set()
        for run_id in dirty:
            tenant = self._tenants.get(run_id)
            if tenant is None:
                run = await self.store.get_run(run_id)
                if run is None:
                    continue
                tenant = self._remember(run_id, run.tenant)
            for sub in list(self._subs):
                if sub.tenant == tenant and (sub.run_id is None or sub.run_id == run_id):
                    sub.changed.set()

    def _remember(self, run_id: str, tenant: str) -> str:
        self._tenants[run_id] = tenant
        self._tenants.move_to_end(run_id)
        while len(self._tenants) > _TENANT_CACHE:
            self._tenants.popitem(last=False)
        return tenant

    # -- consumers -----------------------------------------------------------

    def subscribe(self, tenant: str, run_id: str | None = None) -> Subscription:
        sub = Subscription(tenant, run_id)
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)
