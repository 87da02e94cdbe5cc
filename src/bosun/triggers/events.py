"""Events from runs: a CloudEvent a run emits (a workflow's `emit`) starts other targets.

Each committed emit is a row of the store's outbox (`trigger_emits`, written in the commit
of its `ToolFinished`); `EventRouter` sweeps it, and a matching event trigger fires with the CloudEvent's `id` (deterministic: `<run>:<call>`) as its
delivery id, so an emit seen twice never starts a second run. Loop protection: a run
started by an event carries its chain depth (tag `bosun.depth`: one more than the emitting
run's); an event that would start a run deeper than the trigger's `max_depth` is refused,
counted `rejected` and audited (`trigger_loop_refused`), so two workflows that start each
other stop after a bounded chain.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from bosun.engine.runtime import Runtime
from bosun.errors import StoreError
from bosun.store.triggers import PendingEmit
from bosun.triggers.fire import DEPTH_TAG, Trigger, audit, count, fire

log = logging.getLogger("bosun.triggers")


def matches(trigger: Trigger, event: dict[str, Any]) -> bool:
    spec = trigger.spec.event
    assert spec is not None
    if event.get("type") != spec.type:
        return False
    return spec.source is None or event.get("source") == spec.source


async def deliver(rt: Runtime, trigger: Trigger, run_id: str, event: dict[str, Any]) -> str | None:
    """Start the trigger's run for an event `run_id` emitted; None if refused as a loop."""
    spec = trigger.spec.event
    assert spec is not None
    await count(rt, trigger, "received")
    emitter = await rt.store.get_run(run_id)
    depth = int((emitter.tags or {}).get(DEPTH_TAG, "0")) + 1 if emitter else 1
    if depth > spec.max_depth:
        await count(rt, trigger, "rejected")
        await audit(
            rt,
            trigger,
            f"run:{run_id}",
            "trigger_loop_refused",
            event_id=str(event.get("id")),
            type=str(event.get("type")),
            depth=depth,
            max_depth=spec.max_depth,
        )
        log.warning(
            "trigger %s: event %s from run %s refused: chain depth %d over %d",
            trigger.name,
            event.get("id"),
            run_id,
            depth,
            spec.max_depth,
        )
        return None
    fired = await fire(
        rt,
        trigger,
        event,
        str(event.get("id") or f"{run_id}:{event.get('time')}"),
        tags={DEPTH_TAG: str(depth), "bosun.emitted_by": run_id},
    )
    return fired.run_id


class EventRouter:
    """Hands the emits committed by any process (the store's outbox) to the matching event
    triggers, oldest first, and marks each delivered once its runs are durably created.

    The outbox row is written in the same commit as the emit's `ToolFinished`, so an emit
    whose process died right after that commit is delivered by the next sweep of any
    process running the triggers. A crash between creating the run and marking the row
    sweeps it again: `fire` finds the run by the CloudEvent's id, never a second one. This
    process's own emits wake the sweep at once (a journal listener); others' are found
    within `poll_interval`."""

    def __init__(
        self, rt: Runtime, triggers: list[Trigger], *, poll_interval: float = 1.0, batch: int = 100
    ):
        self.rt = rt
        self.triggers = triggers
        self.poll_interval = poll_interval
        self.batch = batch
        self.wake = asyncio.Event()

    def listener(self, run_id: str, event: dict[str, Any]) -> None:
        if any(matches(t, event) for t in self.triggers):
            self.wake.set()

    def attach(self) -> bool:
        """Wake on this runtime's emits (without the workflow layer, poll only)."""
        try:
            from bosun.workflow import on_emit  # type: ignore[import-not-found]
        except ImportError:
            return False
        on_emit(self.rt, self.listener)
        return True

    async def sweep(self) -> int:
        """Deliver what the outbox holds now; how many emits were marked delivered."""
        marked = 0
        while True:
            pending = await self.rt.store.pending_emits(time.time(), self.batch)
            if not pending:
                return marked
            done = [p.id for p in pending if await self._deliver(p)]
            if done:
                marked += await self.rt.store.mark_emits_delivered(done)
            if len(done) < len(pending):  # a store failure: the rest waits for the next sweep
                return marked
            if len(pending) < self.batch:
                return marked

    async def _deliver(self, emit: PendingEmit) -> bool:
        """Start every matching trigger's run; False (kept pending) on a store failure."""
        for trigger in self.triggers:
            if not matches(trigger, emit.event):
                continue
            try:
                await deliver(self.rt, trigger, emit.run_id, emit.event)
            except StoreError:
                log.warning("trigger %s: event %s not delivered yet", trigger.name, emit.id)
                return False
            except Exception:  # refused for good (unmappable): retrying would not help
                log.exception("trigger %s: event %s refused", trigger.name, emit.id)
                await count(self.rt, trigger, "rejected")
        return True

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.wake.clear()
            try:
                await self.sweep()
            except Exception:
                log.exception("event triggers: sweep failed; trying again")
            waker = asyncio.ensure_future(self.wake.wait())
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait(
                {waker, stopper}, timeout=self.poll_interval, return_when="FIRST_COMPLETED"
            )
            waker.cancel()
            stopper.cancel()
