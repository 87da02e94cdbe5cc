"""`Observer`: hears every journal commit and does the observing off the step loop.

    observer = Observer(rt.store, [TraceSink(...), metrics])
    await observer.attach(rt)      # registers a commit listener, starts the background task
    ...
    await observer.close()         # drains what is queued, flushes the sinks

The listener only appends to a deque (a few hundred nanoseconds); a background task hands
what has queued up to each sink in one call (a list of `Commit`s: one coroutine per sink
per batch, not per commit). A sink that raises is logged and the observer goes on:
observing never stops or slows a run. If the queue is full (a sink far behind), commits are dropped
and counted in `dropped`; the journal still has everything (`bosun export-trace` rebuilds).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from bosun.journal.events import Event, RunFinished, RunNeedsAttention, RunStarted, RunWaiting
from bosun.journal.redact import Sensitivity
from bosun.store.base import Store

log = logging.getLogger("bosun.observe")

# After these a run may sit idle for a long time: observers drop what they hold for it.
IDLE_AFTER = (RunFinished, RunWaiting, RunNeedsAttention)


@dataclass(slots=True)
class RunInfo:
    """What observers need to know about a run besides its events."""

    run_id: str
    agent: str
    agent_version: str = ""
    tenant: str = "default"
    user: str | None = None
    session: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    input: str = ""
    created_at: float = 0.0
    sensitivity: Sensitivity = field(default_factory=Sensitivity)  # shared by a version's runs
    effects: dict[str, str] = field(default_factory=dict)  # tool -> effect class
    parent_id: str | None = None  # run trees: a child's spans join its root's trace
    root_id: str | None = None
    # tool -> (source kind, server name) for tools served by a source (an MCP server)
    sources: dict[str, tuple[str, str]] = field(default_factory=dict)

    @classmethod
    def of_spec(cls, run_id: str, spec: dict[str, Any], **fields: Any) -> RunInfo:
        tools = [t for t in spec.get("tools", []) if "name" in t]
        effects = {t["name"]: t.get("effect", "") for t in tools}
        sources = {  # an MCP source's id is "<server name>#<digest of its settings>"
            t["name"]: (t["source"]["kind"], str(t["source"]["id"]).split("#")[0])
            for t in tools
            if isinstance(t.get("source"), dict) and "kind" in t["source"]
        }
        return cls(
            run_id=run_id,
            sensitivity=Sensitivity.of_spec(spec),
            effects=effects,
            sources=sources,
            **fields,
        )


class Commit(NamedTuple):
    """A run's events from one journal commit, or from back-to-back commits of it (contiguous
    positions), as observers receive them (in commit order).

    A named tuple: one is made per entry of a batch, and a tuple is the cheapest record."""

    info: RunInfo
    first_seq: int
    events: Sequence[Event]


class Sink(Protocol):
    async def handle(self, commits: Sequence[Commit]) -> None: ...

    async def close(self) -> None: ...


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Observer:
    def __init__(
        self,
        store: Store,
        sinks: Sequence[Sink],
        *,
        max_queue: int = 100_000,
        batch_delay: float = 0.1,
    ):
        self.store = store
        self.batch_delay = batch_delay  # gather commits for this long: one wake-up per batch
        self.sinks = list(sinks)
        self.max_queue = max_queue
        self.dropped = 0
        # (run id, first seq, events): a run's contiguous commits share one entry (a list
        # of our own, never the committer's, so it can grow).
        self._queue: collections.deque[tuple[str, int, list[Event]]] = collections.deque()
        self._queued = 0  # commits queued since the queue was last emptied (`max_queue`)
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._urgent = asyncio.Event()  # flush() does not wait for the batch delay
        self._delay: asyncio.Future[None] | None = None  # the batch delay, cut short by flush()
        self._task: asyncio.Task[None] | None = None
        self._runs: dict[str, RunInfo] = {}
        self._versions: dict[str, RunInfo] = {}  # agent version -> a run of it (its spec's facts)

    # -- the commit listener: cheap, never raises ---------------------------

    def __call__(self, run_id: str, first_seq: int, events: Sequence[Event]) -> None:
        if self._queued >= self.max_queue:
            self.dropped += 1
            return
        self._queued += 1
        queue = self._queue
        if queue:
            # Back-to-back commits of a run (a step is two) join the entry before: sinks pay a
            # little per entry, and the committer's list is not kept alive until the batch is
            # handled (fewer objects for the garbage collector to walk meanwhile).
            last = queue[-1]
            if last[0] == run_id and last[1] + len(last[2]) == first_seq:
                last[2].extend(events)
            else:
                queue.append((run_id, first_seq, [*events]))
            return
        # The queue was empty. (While it is not, `_idle` is already clear and `_wake` set, or
        # the background task is still taking entries and will take this one too.)
        queue.append((run_id, first_seq, [*events]))
        self._idle.clear()
        self._wake.set()

    # -- lifecycle -------------------------------------------------------

    async def attach(self, runtime: Any) -> Observer:
        """Listen to `runtime`'s commits and start processing (call inside the event loop)."""
        runtime.journal.listen(self)
        self.start()
        return self

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._process(), name="bosun-observer")

    async def flush(self) -> None:
        """Wait until everything queued so far has been handed to the sinks."""
        if self._task is None:
            self.start()
        if not self._idle.is_set():
            self._urgent.set()
            if self._delay is not None and not self._delay.done():
                self._delay.set_result(None)
        await self._idle.wait()

    async def close(self) -> None:
        if self._task is not None:
            await self.flush()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for sink in self.sinks:
            try:
                await sink.close()
            except Exception:
                log.exception("observer sink %r failed to close", sink)

    # -- the background task ---------------------------------------------

    async def _process(self) -> None:
        while True:
            await self._wake.wait()
            if self.batch_delay and not self._urgent.is_set():
                # A future and a timer: `wait_for` would cost a task per batch.
                loop = asyncio.get_running_loop()
                self._delay = delay = loop.create_future()
                timer = loop.call_later(self.batch_delay, _resolve, delay)
                try:
                    await delay
                finally:
                    timer.cancel()
                    self._delay = None
            self._wake.clear()
            while self._queue:
                await self._dispatch(await self._take())
            if not self._queue:
                self._urgent.clear()
                self._idle.set()

    async def _take(self) -> list[Commit]:
        """Everything queued, with each run's info (read from the store once per run)."""
        commits: list[Commit] = []
        queue, runs = self._queue, self._runs
        while queue:
            run_id, first_seq, events = queue.popleft()
            info = runs.get(run_id)
            if info is None:
                try:
                    info = await self.info(run_id, events)
                except Exception:
                    log.exception(
                        "observer: cannot read run %s; its events are not observed", run_id
                    )
                    continue
            commits.append(Commit(info, first_seq, events))
            if isinstance(events[-1], IDLE_AFTER):
                runs.pop(run_id, None)
        self._queued = 0  # the queue is empty: nothing was appended since the last check
        return commits

    async def _dispatch(self, commits: list[Commit]) -> None:
        if not commits:
            return
        for sink in self.sinks:
            try:
                await sink.handle(commits)
            except Exception:
                log.exception(
                    "observer sink %r failed on a batch of %d commits", sink, len(commits)
                )

    async def info(self, run_id: str, events: Sequence[Event] = ()) -> RunInfo:
        info = self._runs.get(run_id)
        if info is not None:
            return info
        started = events[0] if events and isinstance(events[0], RunStarted) else None
        known = self._versions.get(started.agent_version) if started is not None else None
        if started is not None and known is not None:
            # A new run of a version seen before: its first event says everything else.
            info = RunInfo(
                run_id=run_id,
                agent=started.agent,
                agent_version=started.agent_version,
                tenant=started.tenant,
                user=started.user,
                session=started.session,
                tags=dict(started.tags),
                input=started.input,
                created_at=started.ts,
                parent_id=started.parent_id,
                root_id=started.root_id,
                sensitivity=known.sensitivity,
                effects=known.effects,
            )
        else:
            run = await self.store.get_run(run_id)
            if run is None:
                raise LookupError(f"no run {run_id}")
            info = RunInfo.of_spec(
                run_id,
                run.spec,
                agent=run.agent,
                agent_version=run.agent_version,
                tenant=run.tenant,
                user=run.user,
                session=run.session,
                tags=dict(run.tags),
                input=run.input,
                created_at=started.ts if started is not None else run.created_at,
                parent_id=run.parent_id,
                root_id=run.root_id if run.root_id != run_id else None,
            )
            self._versions[run.agent_version] = info
        self._runs[run_id] = info
        return info
