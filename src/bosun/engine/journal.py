"""One journal writer: every event a run's journal receives goes through `JournalWriter`.

Why one writer: traces, metrics, the live console and the feed are projections of the
journal that learn of new events from commit listeners. When each appender (the step loop,
run creation, resolve, rollback, the watchdog, waits) called the store itself, only the ones
that remembered to notify were seen, and each stamped times its own way. Here, in one place:

- **times**: `stamp` sets `event.ts` from the writer's clock, never going backwards within a
  writer (a wall clock stepped back by NTP would otherwise reorder a run's events). Callers
  never set `ts`; `append` and `create` stamp any event that is not stamped yet. The loop
  stamps at `record` time, before folding the event into its state (a run's `finished_at`
  is its last event's time, so the state and the journal agree);
- **fencing**: `append` is the store's fenced append (`LeaseLost`, writing nothing, unless
  `owner` holds the run's lease), so whoever appends must hold the lease, as the loop does;
- **listeners**: after the store committed, every registered listener is called with
  `(run_id, first_seq, events)`. Listeners must be cheap and must not raise (queue the
  events, do the work elsewhere); one that raises anyway is logged and skipped: the events
  are committed, and neither the appender nor the other listeners should pay for it.

The API, for whatever appends next (durable waits, signals):

    journal = runtime.journal                    # one per Runtime, shared by its loops
    journal.listen(listener)                     # (run_id, first_seq, events) -> None
    await journal.extend(state, [event], owner=me)   # stamp, fold into state, append
    await journal.append(run_id, events, first_seq=n, owner=me, summary=s)  # lower level
    await journal.create(run, [RunStarted(...)])  # a new run and its first events
    await journal.append_via(run_id, events, write)  # a store op journaling in its own
                                                     # transaction; write returns first seq
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TypeVar

from bosun.engine.state import RunState
from bosun.journal.events import Event
from bosun.store.base import AppendResult, RunRecord, RunSummary, Store

# Called after each commit with (run_id, first_seq, events). Must be cheap and never raise:
# observers (traces, metrics) queue the events and do their work off the step loop.
CommitListener = Callable[[str, int, Sequence[Event]], None]

E = TypeVar("E", bound=Event)

log = logging.getLogger("bosun.journal")


class JournalWriter:
    """Stamps, appends (fenced) and notifies: the only way events enter a run's journal."""

    def __init__(
        self,
        store: Store,
        listeners: Iterable[CommitListener] = (),
        *,
        clock: Callable[[], float] = time.time,
    ):
        self.store = store
        self.listeners: list[CommitListener] = list(listeners)
        # Seconds since the epoch; replaceable (a simulation's clock, a test's counter).
        self.clock = clock
        self._last = 0.0

    def listen(self, listener: CommitListener) -> None:
        """Call `listener` after every commit from now on (see `CommitListener`)."""
        self.listeners.append(listener)

    def stamp(self, event: E) -> E:
        """Set the event's time: now, or the last time stamped if the clock went back."""
        now = self.clock()
        if now < self._last:
            now = self._last
        self._last = now
        object.__setattr__(event, "ts", now)  # events are frozen; the writer alone sets ts
        return event

    async def create(self, run: RunRecord, events: Sequence[Event]) -> RunRecord:
        """Create the run with its first events (seq 1..n) and tell the listeners; returns
        the stored run, which is another, untouched, run when `run.idempotency_key` was
        used already (nothing is written then, and nobody is told)."""
        for event in events:
            if not event.ts:
                self.stamp(event)
        stored = await self.store.create_run(run, events)
        if stored.id == run.id:
            self._notify(run.id, 1, events)
        return stored

    def append(
        self,
        run_id: str,
        events: Sequence[Event],
        *,
        first_seq: int,
        owner: str,
        summary: RunSummary,
    ) -> Awaitable[AppendResult]:
        """Append `events` as seq `first_seq`.. with the run's new `summary`, fenced by
        `owner`'s lease (`LeaseLost` otherwise, nothing written), then tell the listeners.

        Awaited like a coroutine; with nobody listening it *is* the store's (the step loop
        commits twice a step, and a layer of coroutine is a measurable part of that)."""
        for event in events:
            if not event.ts:
                self.stamp(event)
        appended = self.store.append(
            run_id, events, first_seq=first_seq, owner=owner, summary=summary
        )
        if not self.listeners:
            return appended
        return self._notified(appended, run_id, first_seq, events)

    async def _notified(
        self,
        appended: Awaitable[AppendResult],
        run_id: str,
        first_seq: int,
        events: Sequence[Event],
    ) -> AppendResult:
        result = await appended
        self._notify(run_id, first_seq, events)
        return result

    async def extend(self, state: RunState, events: Sequence[Event], *, owner: str) -> AppendResult:
        """Stamp `events`, fold them into `state` (rebuilt from the journal by a caller
        holding the lease) and append them after its last seq: what every appender outside
        the step loop (resolve, rollback, waits) needs."""
        for event in events:
            self.stamp(event)
            state.apply(event)
        return await self.append(
            state.run_id,
            events,
            first_seq=state.seq - len(events) + 1,
            owner=owner,
            summary=state.summary(),
        )

    async def append_via(
        self,
        run_id: str,
        events: Sequence[Event],
        write: Callable[[Sequence[Event]], Awaitable[int | None]],
    ) -> int | None:
        """For a store operation that journals `events` inside its own transaction (a wait
        settled and its result journaled at once, so two racing deliveries write it once):
        stamp the events, let `write` store them and return the first seq it gave them, or
        None when it wrote nothing (the race was lost), then tell the listeners."""
        for event in events:
            if not event.ts:
                self.stamp(event)
        first_seq = await write(events)
        if first_seq is not None:
            self._notify(run_id, first_seq, events)
        return first_seq

    def _notify(self, run_id: str, first_seq: int, events: Sequence[Event]) -> None:
        for listener in self.listeners:
            try:
                listener(run_id, first_seq, events)
            except Exception:
                log.exception(
                    "journal listener %r failed on run %s (seq %d..%d); the events are"
                    " committed, the listener missed them",
                    listener,
                    run_id,
                    first_seq,
                    first_seq + len(events) - 1,
                )


__all__ = ["CommitListener", "JournalWriter"]
