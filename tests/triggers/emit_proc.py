"""A process that dies by SIGKILL at a chosen point of an emit's delivery (the outbox tests).

`emit DB`: runs `once.yaml` and SIGKILLs itself the moment the emit's `ToolFinished` is
committed (a journal listener, registered before anything that would hand the event on).
`deliver DB`: runs the event triggers of `once_triggers.yaml` and SIGKILLs itself once the
triggered run is durably created, before the outbox row is marked delivered.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from bosun.engine.runtime import Runtime
from bosun.engine.worker import Worker
from bosun.journal.emitted import cloud_event
from bosun.triggers.events import EventRouter
from bosun.triggers.runner import Triggers
from bosun.triggers.target import load_target

HERE = Path(__file__).parent


def die(*_: object) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


async def emit(db: str) -> None:
    async with Runtime(db) as rt:

        def listener(run_id: str, first_seq: int, events: list) -> None:
            if any(cloud_event(e) is not None for e in events):
                die()

        rt.journal.listen(listener)
        await load_target(str(HERE / "once.yaml")).submit(
            rt, {"order": 7}, key="emitter", tenant="default", tags={}
        )
        stop = asyncio.Event()
        await Worker(rt, poll_interval=0.05).serve(stop)


async def deliver(db: str) -> None:
    async with Runtime(db) as rt:
        triggers = Triggers.load(rt, str(HERE / "once_triggers.yaml"))
        for trigger in triggers.all.values():
            await rt.store.ensure_trigger(trigger.name, trigger.spec.tenant)
        marking = rt.store.mark_emits_delivered

        async def mark_then_die(ids: list[str]) -> int:
            die()  # the run exists (fire returned); the row is not marked
            return await marking(ids)

        rt.store.mark_emits_delivered = mark_then_die  # type: ignore[method-assign]
        await EventRouter(rt, triggers.of_kind("event")).sweep()


if __name__ == "__main__":
    asyncio.run({"emit": emit, "deliver": deliver}[sys.argv[1]](sys.argv[2]))
    sys.exit(3)  # never reached: the process dies by SIGKILL
