"""The one path every trigger starts a run through, and the counters it keeps.

`fire` claims the event's delivery id in the shared store, creates the run keyed by it
(`Runtime.submit(key=)`: durably created when it returns), then links the delivery to the
run. A redelivery (the same id, from any process) finds the run again: `deduplicated`,
never a second run. The process that links the run counts it `started`, so a crash between
creating and linking still counts the run once, when the event comes again.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from bosun.engine.runtime import Runtime
from bosun.errors import BosunError
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


class Replayed(BosunError):
    """A signed request seen before under another delivery id: refused."""


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


async def fire(
    rt: Runtime,
    trigger: Trigger,
    payload: Any,
    delivery: str,
    *,
    signature: str | None = None,
    tags: dict[str, str] | None = None,
    attachments: list[Media] | None = None,
) -> Fired:
    """Start the trigger's run for one event (see the module docstring)."""
    store = rt.store
    claimed, run_id = await store.claim_delivery(trigger.name, delivery, signature)
    if claimed == "replay":
        await count(rt, trigger, "rejected")
        raise Replayed(
            f"trigger {trigger.name}: this signed request was delivered before under another"
            " delivery id (a replay): refused"
        )
    if run_id is not None:  # a redelivery whose run is linked already
        await count(rt, trigger, "deduplicated")
        return Fired(run_id, False)
    run_id = await trigger.target.submit(
        rt,
        payload,
        key=trigger.key(delivery),
        tenant=trigger.spec.tenant,
        tags=trigger.tags(tags),
        attachments=attachments,
    )
    started = await store.link_delivery(trigger.name, delivery, run_id)
    await count(rt, trigger, "started" if started else "deduplicated")
    return Fired(run_id, started)


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
