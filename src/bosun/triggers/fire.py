"""The one path every trigger starts a run through, and the counters it keeps.

`fire` claims the event's delivery id in the shared store, creates the run keyed by it
(`Runtime.submit(key=)`: durably created when it returns), then links the delivery to the
run. A redelivery (the same id, from any process) finds the run again: `deduplicated`,
never a second run. The process that links the run counts it `started`, so a crash between
creating and linking still counts the run once, when the event comes again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from bosun.engine.runtime import Runtime
from bosun.errors import BosunError, Replayed, StoreError
from bosun.journal.audit import AuditEntry
from bosun.spec.media import Media
from bosun.triggers.spec import TriggerSpec
from bosun.triggers.target import Target

log = logging.getLogger("bosun.triggers")

TRIGGER_TAG = "bosun.trigger"  # every run a trigger starts carries its name
DEPTH_TAG = "bosun.depth"  # how many emitted events led to this run (loop protection)


@dataclass(frozen=True, slots=True)
class Fired:
    run_id: str
    started: bool  # False: a redelivery, the run it started first


@dataclass
class Trigger:
    """A trigger of the file, its target loaded, ready to fire."""

    spec: TriggerSpec
    target: Target

    @property
    def name(self) -> str:
        return self.spec.name

    def key(self, delivery: str) -> str:
        return f"trigger:{self.name}:{delivery}"

    def tags(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {**self.spec.tags, TRIGGER_TAG: self.name, **(extra or {})}

    async def paused(self, rt: Runtime) -> bool:
        rows = await rt.store.triggers(self.name)
        return bool(rows and rows[0].paused)


@dataclass
class Incoming:
    """One event to start a run for: its payload, delivery id and what comes with it."""

    payload: Any
    delivery: str
    signature: str | None = None
    tags: dict[str, str] | None = None
    attachments: list[Media] | None = None
    received: bool = False  # count it `received` with its claim


async def fire(
    rt: Runtime,
    trigger: Trigger,
    payload: Any,
    delivery: str,
    *,
    signature: str | None = None,
    tags: dict[str, str] | None = None,
    attachments: list[Media] | None = None,
    received: bool = False,
) -> Fired:
    """Start the trigger's run for one event (see the module docstring)."""
    (fired,) = await fire_many(
        rt, trigger, [Incoming(payload, delivery, signature, tags, attachments, received)]
    )
    if isinstance(fired, Exception):
        raise fired
    return fired


async def fire_many(
    rt: Runtime, trigger: Trigger, events: list[Incoming]
) -> list[Fired | Exception]:
    """`fire` for a batch (a queue's pull): one transaction claims them all, their runs
    are created concurrently, one transaction links them. Per event, its `Fired`, or the
    exception that refused it (`InputMappingFailed`, `Replayed`); a store failure raises
    for the whole batch (nothing acked: it all comes again, and finds what was made)."""
    results: list[Fired | Exception | None] = [None] * len(events)
    texts: dict[int, str] = {}
    for i, event in enumerate(events):
        try:
            texts[i] = trigger.target.input_of(event.payload)  # unmappable: claims nothing
        except BosunError as exc:
            results[i] = exc
    todo = list(texts)
    claims = await rt.store.claim_deliveries(
        trigger.name,
        [(events[i].delivery, events[i].signature) for i in todo],
        received=sum(1 for e in events if e.received),
    )
    to_start: list[int] = []
    linked_before = 0
    for i, (claimed, run_id) in zip(todo, claims, strict=True):
        if claimed == "replay":
            results[i] = Replayed(
                f"trigger {trigger.name}: this signed request was delivered before under"
                " another delivery id (a replay): refused"
            )
        elif run_id is not None:  # a redelivery whose run is linked already
            results[i] = Fired(run_id, False)
            linked_before += 1
        else:
            to_start.append(i)
    replays = sum(1 for r in results if isinstance(r, Replayed))
    if replays:
        await count(rt, trigger, "rejected", replays)
    created = await asyncio.gather(
        *(
            trigger.target.start(
                rt,
                texts[i],
                key=trigger.key(events[i].delivery),
                tenant=trigger.spec.tenant,
                tags=trigger.tags(events[i].tags),
                attachments=events[i].attachments,
            )
            for i in to_start
        ),
        return_exceptions=True,
    )
    store_failure = next((c for c in created if isinstance(c, StoreError)), None)
    if store_failure is not None:
        raise store_failure  # the whole batch comes again; what was created is found
    made = [(i, c) for i, c in zip(to_start, created, strict=True) if isinstance(c, str)]
    for i, c in zip(to_start, created, strict=True):
        if isinstance(c, BaseException):
            if not isinstance(c, Exception):
                raise c
            results[i] = c  # refused for this event alone (e.g. text no run may hold)
    linked = await rt.store.link_deliveries(
        trigger.name,
        [(events[i].delivery, run_id) for i, run_id in made],
        deduplicated=linked_before,
    )
    for (i, run_id), first in zip(made, linked, strict=True):
        results[i] = Fired(run_id, first)
    return [r if r is not None else BosunError("not fired") for r in results]


async def count(rt: Runtime, trigger: Trigger, counter: str, n: int = 1) -> None:
    await rt.store.count_trigger(trigger.name, counter, n)


async def audit(rt: Runtime, trigger: Trigger, actor: str, action: str, **detail: Any) -> None:
    """A refused event on the audit trail (a forged signature, a loop cut short)."""
    await rt.store.append_audit(
        [
            AuditEntry(
                time.time(),
                actor,
                action,
                f"trigger:{trigger.name}",
                detail,
                tenant=trigger.spec.tenant,
            )
        ]
    )
