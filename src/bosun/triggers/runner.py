"""The triggers of one file, running in this process (`bosun serve --triggers FILE`,
`bosun worker --triggers FILE`): schedules polled, queues consumed, emitted events routed,
and webhooks looked up by the server's `POST /hooks/{name}`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from bosun.engine.runtime import Runtime
from bosun.errors import SpecError
from bosun.triggers import schedule
from bosun.triggers.events import EventRouter
from bosun.triggers.fire import Trigger
from bosun.triggers.queue import QueueConsumer, consumer_for
from bosun.triggers.spec import TriggersFile, load_triggers
from bosun.triggers.target import load_target

log = logging.getLogger("bosun.triggers")


class Triggers:
    def __init__(self, rt: Runtime, file: TriggersFile, *, poll_interval: float = 1.0):
        self.rt = rt
        self.file = file
        self.poll_interval = poll_interval
        self.all: dict[str, Trigger] = {}
        for spec in file.triggers:
            path = file.target_path(spec)
            try:
                target = load_target(path, spec.input)
            except SpecError as exc:
                raise SpecError(f"triggers file {file.path}, trigger {spec.name}: {exc}") from None
            self.all[spec.name] = Trigger(spec, target)
        self.tasks: list[asyncio.Task[None]] = []

    @classmethod
    def load(cls, rt: Runtime, path: str, **options: float) -> Triggers:
        return cls(rt, load_triggers(path), **options)

    def of_kind(self, kind: str) -> list[Trigger]:
        return [t for t in self.all.values() if t.spec.kind == kind]

    def webhook(self, name: str) -> Trigger | None:
        trigger = self.all.get(name)
        return trigger if trigger is not None and trigger.spec.kind == "webhook" else None

    async def start(self, stop: asyncio.Event) -> None:
        """Register every trigger's row, then run the schedules, queues and event routes
        in tasks until `stop` is set."""
        for trigger in self.all.values():
            await self.rt.store.ensure_trigger(trigger.name, trigger.spec.tenant)
        if self.of_kind("schedule"):
            self.tasks.append(asyncio.create_task(self._schedules(stop), name="bosun-schedules"))
        for trigger in self.of_kind("queue"):
            consumer = consumer_for(self.rt, trigger)
            self.tasks.append(
                asyncio.create_task(self._supervised(consumer, stop), name=f"bosun-{trigger.name}")
            )
        events = self.of_kind("event")
        if events:
            router = EventRouter(self.rt, events, poll_interval=self.poll_interval)
            router.attach()
            self.tasks.append(asyncio.create_task(router.run(stop), name="bosun-events"))

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.tasks.clear()

    async def _schedules(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            for trigger in self.of_kind("schedule"):
                try:
                    await schedule.poll(self.rt, trigger, time.time())
                except Exception:
                    log.exception("schedule %s: poll failed; trying again", trigger.name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.poll_interval)

    async def _supervised(self, consumer: QueueConsumer, stop: asyncio.Event) -> None:
        """A queue consumer, connected again (after a pause) whenever it fails."""
        delay = 0.5
        while not stop.is_set():
            try:
                await consumer.run(stop)
                return
            except Exception as exc:
                log.warning(
                    "trigger %s: consumer stopped (%s: %s); again in %.1f s",
                    consumer.trigger.name,
                    type(exc).__name__,
                    exc,
                    delay,
                )
                consumer.connected = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, 10.0)
