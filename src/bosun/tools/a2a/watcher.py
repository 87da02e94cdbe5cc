"""The worker's watcher of remote A2A tasks: while a run is parked on one (a pending
`remote` wait keyed `a2a:...`), exactly one worker follows the task and settles the wait
when the task ends or asks for input. No worker is held by the run meanwhile.

**Exactly one watcher per run, leased.** A parked run holds no lease (its driver released
it). The watcher takes the run's lease under an owner of its own (`<worker>/a2a`, never
the driving worker's, so the two never renew or release each other's lease) with the
store's compare-and-set `acquire` (free, expired or already ours), renews it every poll
(`heartbeat`) and gives it back when nothing of the run is left to watch. A run woken
meanwhile (a deadline, a cancel, a kill) is claimed by a worker whatever lease a parked
run carried: the watcher's next heartbeat finds the lease gone and it lets go. A watcher
that was SIGKILLed stops renewing: once the lease expires another worker's watcher takes
the run and continues the *same* remote task (its id is in the wait's key, journaled
before the run parked): nothing is sent again.

**Settling** is the store's one wake path (`settle_wait`, compare-and-set): the outcome
of a task that completed, failed or asked for input, with the progress seen while it ran
(status messages of a `working` task, coalesced to one per `PROGRESS_EVERY` seconds);
the woken run journals them (`engine/waits.collect`). A remote agent that cannot be
reached (restarting) is asked again at the next poll; one that forgot the task settles
the call as failed (`remote_task_lost`). Cancelling is the run's own business, whoever
watched: a run cancelled or killed cancels its remote tasks as it ends
(`engine/agent_calls.stop_children`), and one whose wait passed its deadline as it wakes
(`remote_expired`).

Costs one indexed query per poll while no A2A task is pending.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bosun.errors import BosunError, SourceUnavailable
from bosun.spec.a2a_remote import KEY_PREFIX, KIND, parse_key, source_tag
from bosun.tools.a2a.results import (
    COMPLETED,
    ENDED_STATES,
    INPUT_REQUIRED,
    failure,
    state_name,
    status_text,
    task_result,
)
from bosun.tools.a2a.source import A2aSource

if TYPE_CHECKING:
    from bosun.engine.runtime import Runtime
    from bosun.store.waits_rows import WaitRecord

log = logging.getLogger("bosun.tools.a2a")

PROGRESS_EVERY = 5.0  # seconds: as engine/progress.py coalesces a running call's reports
MAX_PROGRESS = 50  # progress entries kept per task (the latest when there are more)
POLL_SECONDS = 0.5  # how often the watcher looks for pending A2A waits (the worker's poll)


@dataclass
class Watched:
    """What the watcher knows of one task it follows."""

    wait_id: str
    run_id: str
    task_id: str
    source: A2aSource | None = None
    due: float = 0.0  # when to look at the task next
    progress: list[dict[str, Any]] = field(default_factory=list)
    said: str = ""  # the latest status message seen
    noted_at: float = -1e18
    unreachable: bool = False


class A2aWatcher:
    """Follows the remote A2A tasks of parked runs (see the module docstring)."""

    def __init__(self, runtime: Runtime, *, poll: float | None = None):
        self.rt = runtime
        self.store = runtime.store
        self.owner = f"{runtime.owner}/a2a"
        self.poll_seconds = poll or POLL_SECONDS  # read now: a bench may set the module's
        self.held: set[str] = set()  # runs whose lease this watcher holds
        self.watched: dict[str, Watched] = {}  # by wait id

    async def busy(self) -> bool:
        """Whether a remote A2A task is still being waited for, by any run (a worker asked
        to exit when idle keeps going while one is: its run needs a watcher to wake)."""
        return bool(await self.store.remote_waits(KEY_PREFIX, limit=1))

    async def serve(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.poll()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a database outage: the worker's own poll reports it
                log.info("A2A watcher: a poll failed: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.poll_seconds)
        await self.close()

    async def close(self) -> None:
        for run_id in list(self.held):
            with contextlib.suppress(Exception):
                await self.store.release(run_id, self.owner)
        self.held.clear()
        self.watched.clear()

    async def poll(self) -> None:
        """One look: renew leases, take unwatched runs, look at due tasks, let go."""
        lease = self.rt.lease_seconds
        if self.held:
            kept = await self.store.heartbeat(self.owner, sorted(self.held), lease)
            for run_id in self.held - kept:  # claimed by a worker (woken): not ours now
                self._forget_run(run_id)
        waits = await self.store.remote_waits(KEY_PREFIX)
        pending = {w.id for w in waits}
        for wait_id in [w for w in self.watched if w not in pending]:
            del self.watched[wait_id]  # settled elsewhere: a deadline, its run ended
        now = time.time()
        for wait in waits:
            if wait.run_id not in self.held:
                if await self.store.acquire(wait.run_id, self.owner, lease_seconds=lease) is None:
                    continue  # its driver still holds it, or another worker's watcher
                self.held.add(wait.run_id)
            watched = self.watched.get(wait.id)
            if watched is None:
                parsed = parse_key(wait.key)
                if parsed is None:
                    continue
                watched = self.watched[wait.id] = Watched(wait.id, wait.run_id, parsed[1])
            if watched.due <= now:
                await self._look(watched, wait)
        for run_id in list(self.held):  # nothing of it left to watch: give it back
            if not any(w.run_id == run_id for w in self.watched.values()):
                await self.store.release(run_id, self.owner)
                self.held.discard(run_id)

    def _forget_run(self, run_id: str) -> None:
        self.held.discard(run_id)
        for wait_id in [i for i, w in self.watched.items() if w.run_id == run_id]:
            del self.watched[wait_id]

    async def _source(self, wait: WaitRecord) -> A2aSource:
        """The open source serving the task: the run's pinned A2A tool whose source tag the
        wait's key names (opened in this worker's pool if it is not yet)."""
        parsed = parse_key(wait.key)
        run = await self.rt.get_run(wait.run_id)
        agent = self.rt.agent_for(run)
        for pin in agent.pins.values():
            if pin.source.kind == KIND and parsed and source_tag(pin.source) == parsed[0]:
                opened = await self.rt.sources.get(pin.source)
                assert isinstance(opened.source, A2aSource)
                return opened.source
        raise BosunError(f"run {wait.run_id} pins no A2A agent for wait {wait.id} ({wait.key})")

    async def _look(self, watched: Watched, wait: WaitRecord) -> None:
        now = time.time()
        try:
            source = watched.source or await self._source(wait)
            watched.source = source
            watched.due = now + source.agent.poll_interval
            task = await source.task(watched.task_id)
        except SourceUnavailable as exc:
            if not watched.unreachable:  # once per outage, not once per poll
                log.warning("A2A task %s: %s; asking again", watched.task_id, exc)
            watched.unreachable = True
            watched.due = now + (watched.source.agent.poll_interval if watched.source else 1.0)
            return
        except LookupError as exc:
            await self._settle(
                watched, {"failed": {"error_type": "remote_task_lost", "message": str(exc)}}
            )
            return
        except BosunError as exc:
            log.error("A2A wait %s: %s", wait.id, exc)
            watched.due = now + 30.0
            return
        if watched.unreachable:
            log.info("A2A task %s: its agent answers again", watched.task_id)
            watched.unreachable = False
        state = state_name(task)
        if state not in ENDED_STATES:
            self._note(watched, status_text(task), now)
            return
        if state in (COMPLETED, INPUT_REQUIRED):
            outcome = {"result": task_result(task, source.label, source.agent.max_result_chars)}
        else:
            outcome = {"failed": failure(task, source.label)}
        await self._settle(watched, outcome)

    def _note(self, watched: Watched, said: str, now: float) -> None:
        """A running task's status message, coalesced: a new one is kept at most every
        `PROGRESS_EVERY` seconds (the latest replaces one noted sooner)."""
        if not said or said == watched.said:
            return
        watched.said = said
        entry = {"message": said[:200], "at": round(now, 3)}
        if now - watched.noted_at < PROGRESS_EVERY and watched.progress:
            watched.progress[-1] = entry
            return
        watched.noted_at = now
        watched.progress = [*watched.progress, entry][-MAX_PROGRESS:]

    async def _settle(self, watched: Watched, outcome: dict[str, Any]) -> None:
        if watched.progress:
            outcome["progress"] = watched.progress
        won = await self.store.settle_wait(watched.wait_id, {"remote_outcome": outcome})
        self.watched.pop(watched.wait_id, None)
        log.info(
            "A2A task %s: %s (wait %s %s)",
            watched.task_id,
            "failed" if "failed" in outcome else outcome["result"]["status"],
            watched.wait_id,
            "settled" if won else "had settled already",
        )


def a2a_watcher(runtime: Runtime, poll: float = POLL_SECONDS) -> A2aWatcher:
    """A worker's watcher, looking as often as the worker polls (at least every 2 s, at
    most every 20 ms: each look is one indexed query)."""
    return A2aWatcher(runtime, poll=min(2.0, max(0.02, poll)))


__all__ = ["A2aWatcher", "a2a_watcher"]
