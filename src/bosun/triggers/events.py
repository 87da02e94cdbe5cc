"""Events from runs: a CloudEvent a run emits (a workflow's `emit`) starts other targets.

The workflow layer tells us of each committed emit (`bosun.workflow.on_emit`); a matching
event trigger fires with the CloudEvent's `id` (deterministic: `<run>:<call>`) as its
delivery id, so an emit seen twice never starts a second run. Loop protection: a run
started by an event carries its chain depth (tag `bosun.depth`: one more than the emitting
run's); an event that would start a run deeper than the trigger's `max_depth` is refused,
counted `rejected` and audited (`trigger_loop_refused`), so two workflows that start each
other stop after a bounded chain.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from bosun.engine.runtime import Runtime
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
    """Queues the emits this process commits and fires the matching triggers in order."""

    def __init__(self, rt: Runtime, triggers: list[Trigger]):
        self.rt = rt
        self.triggers = triggers
        self.queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()

    def listener(self, run_id: str, event: dict[str, Any]) -> None:
        if any(matches(t, event) for t in self.triggers):
            self.queue.put_nowait((run_id, event))

    def attach(self) -> bool:
        """Listen to the runtime's emits; False (and a warning) without a workflow layer."""
        try:
            from bosun.workflow import on_emit  # type: ignore[import-not-found]
        except ImportError:
            log.warning("event triggers need bosun.workflow (emit): not listening")
            return False
        on_emit(self.rt, self.listener)
        return True

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            getter = asyncio.ensure_future(self.queue.get())
            stopper = asyncio.ensure_future(stop.wait())
            done, _ = await asyncio.wait({getter, stopper}, return_when="FIRST_COMPLETED")
            stopper.cancel()
            if getter not in done:
                getter.cancel()
                return
            run_id, event = getter.result()
            for trigger in self.triggers:
                if matches(trigger, event):
                    try:
                        await deliver(self.rt, trigger, run_id, event)
                    except Exception:
                        log.exception(
                            "trigger %s: event %s not delivered", trigger.name, event.get("id")
                        )
