"""Queue triggers: a NATS JetStream subject consumed by a durable pull consumer.

Every process serving the trigger pulls from the same durable consumer, so each message
goes to one of them at a time. A message is acknowledged only after its run is durably
created (`fire` returns once the run's first events are committed): a process killed
before the ack leaves the message to be redelivered after `ack_wait_seconds`, and the
message's id (`Nats-Msg-Id`, else its stream sequence) as the idempotency key gives the
redelivery the same run, so nothing is lost and nothing runs twice.

Backpressure: at most `max_in_flight` runs of the trigger are in flight (started and not
yet ended, read from the shared store); a full trigger stops pulling, so messages wait in
the stream, none dropped. A message that fails `max_deliveries` times (not JSON, its input
expression fails) goes to the dead-letter subject with the reason, and is acknowledged.
A database outage is not the message's fault: the message is handed back, not counted.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

import orjson

from bosun.engine.runtime import Runtime
from bosun.errors import StoreError
from bosun.spec.media import Media
from bosun.triggers.fire import Incoming, Trigger, count, fire_many

log = logging.getLogger("bosun.triggers")

MAX_BATCH = 64
RETRY_DELAY = 0.5  # seconds before a failed message is delivered again


async def in_flight(rt: Runtime, trigger: Trigger, limit: int) -> int:
    """Runs of the trigger not yet ended, counted up to `limit` (all processes' runs)."""
    return await rt.store.trigger_in_flight(trigger.name, trigger.spec.tenant, limit)


@dataclass
class Delivered:
    """A message as every broker's consumer hands it on: its bytes and headers, its id
    (the idempotency key), how many times it has been delivered, and how to settle it."""

    data: bytes
    headers: dict[str, str]
    msg_id: str
    deliveries: int
    subject: str
    raw: Any  # the broker's own message


class QueueConsumer(abc.ABC):
    """One process's consumer of a queue trigger (see the module docstring): the loop,
    backpressure and failure handling; a broker supplies connect, pull, ack, nak, dead."""

    def __init__(self, rt: Runtime, trigger: Trigger, *, poll_interval: float = 0.5):
        assert trigger.spec.queue is not None
        self.rt = rt
        self.trigger = trigger
        self.queue = trigger.spec.queue
        self.poll_interval = poll_interval
        self.dead_letter = self.queue.dead_letter or f"{self.queue.subject}.dead"
        self.connected = False

    @abc.abstractmethod
    async def connect(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def pull(self, n: int) -> list[Delivered]:
        """Up to `n` messages (none after about a second when the queue is empty)."""

    @abc.abstractmethod
    async def ack(self, msg: Delivered) -> None: ...

    @abc.abstractmethod
    async def nak(self, msg: Delivered) -> None:
        """Hand the message back, to be delivered again (after `RETRY_DELAY`)."""

    @abc.abstractmethod
    async def publish_dead(self, msg: Delivered, headers: dict[str, str]) -> None: ...

    async def run(self, stop: asyncio.Event) -> None:
        """Pull and start runs until `stop` is set."""
        await self.rt.store.ensure_trigger(self.trigger.name, self.trigger.spec.tenant)
        try:
            if not self.connected:
                await self.connect()
                self.connected = True
            while not stop.is_set():
                free = await self.free()
                if free <= 0:
                    await _sleep(stop, self.poll_interval)
                    continue
                messages = await self.pull(min(free, MAX_BATCH))
                if messages:
                    await self.handle(messages)
        finally:
            self.connected = False
            await self.close()

    async def free(self) -> int:
        """How many more runs the trigger may start now (0: full, or paused)."""
        if await self.trigger.paused(self.rt):
            return 0
        limit = self.queue.max_in_flight
        return limit - await in_flight(self.rt, self.trigger, limit)

    async def handle(self, messages: list[Delivered]) -> None:
        """Start the batch's runs (`fire_many`), then ack each; hand a message back or
        dead-letter it when it fails."""
        incoming: list[tuple[Delivered, Incoming]] = []
        for msg in messages:
            try:
                payload, attachments = self.decode(msg)
            except Exception as exc:
                await self.failed(msg, exc, counted=False)
                continue
            event = Incoming(
                payload, msg.msg_id, attachments=attachments, received=msg.deliveries == 1
            )
            incoming.append((msg, event))
        if not incoming:
            return
        try:
            results = await fire_many(self.rt, self.trigger, [e for _, e in incoming])
        except StoreError as exc:
            log.warning("trigger %s: batch handed back: %s", self.trigger.name, exc)
            await asyncio.gather(*(self.nak(m) for m, _ in incoming))
            return
        for (msg, _), result in zip(incoming, results, strict=True):
            if isinstance(result, Exception):
                await self.failed(msg, result, counted=True)
            else:
                await self.ack(msg)

    async def failed(self, msg: Delivered, exc: Exception, *, counted: bool) -> None:
        """A message that could not start its run: again later, or to the dead letters."""
        if msg.deliveries == 1 and not counted:  # never claimed: count it received here
            await count(self.rt, self.trigger, "received")
        if msg.deliveries >= self.queue.max_deliveries:
            await self.dead(msg, f"{type(exc).__name__}: {exc}")
        else:
            log.info("trigger %s: message %s failed (%s)", self.trigger.name, msg.msg_id, exc)
            await self.nak(msg)

    def decode(self, msg: Delivered) -> tuple[Any, list[Media] | None]:
        if self.queue.attach:
            media = Media(
                msg.data,
                msg.headers.get("Content-Type", "application/octet-stream"),
                msg.headers.get("Bosun-Name"),
            )
            return {"subject": msg.subject, "headers": msg.headers}, [media]
        return orjson.loads(msg.data), None

    async def dead(self, msg: Delivered, reason: str) -> None:
        headers = {
            "Bosun-Trigger": self.trigger.name,
            "Bosun-Error": reason[:500],
            "Bosun-Deliveries": str(msg.deliveries),
            "Nats-Msg-Id": f"dead-{msg.msg_id}",
            "Bosun-Original-Id": msg.msg_id,
        }
        await self.publish_dead(msg, headers)
        await self.ack(msg)
        await count(self.rt, self.trigger, "dead_lettered")
        log.warning(
            "trigger %s: message %s dead-lettered: %s", self.trigger.name, msg.msg_id, reason
        )


class NatsConsumer(QueueConsumer):
    """A NATS JetStream durable pull consumer (the stream is created if missing)."""

    def __init__(self, rt: Runtime, trigger: Trigger, *, poll_interval: float = 0.5):
        super().__init__(rt, trigger, poll_interval=poll_interval)
        self.stream = self.queue.stream or "BOSUN_" + _token(trigger.name)
        self.durable = self.queue.durable or "bosun-" + _token(trigger.name)
        self.nc: Any = None
        self.js: Any = None
        self.sub: Any = None

    async def connect(self) -> None:
        import nats
        from nats.js import api
        from nats.js.errors import NotFoundError

        self.nc = await nats.connect(self.queue.url, connect_timeout=5, max_reconnect_attempts=-1)
        self.js = self.nc.jetstream()
        try:
            await self.js.stream_info(self.stream)
        except NotFoundError:
            subjects = [self.queue.subject, self.dead_letter]
            await self.js.add_stream(name=self.stream, subjects=subjects)
        config = api.ConsumerConfig(
            ack_wait=self.queue.ack_wait_seconds,
            max_deliver=-1,  # we dead-letter ourselves, with the reason
            ack_policy=api.AckPolicy.EXPLICIT,
        )
        self.sub = await self.js.pull_subscribe(
            self.queue.subject, durable=self.durable, stream=self.stream, config=config
        )

    async def close(self) -> None:
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await self.nc.drain()
            self.nc = None

    async def pull(self, n: int) -> list[Delivered]:
        from nats.errors import TimeoutError as NatsTimeout

        try:
            messages = await self.sub.fetch(batch=n, timeout=1)
        except NatsTimeout:
            return []
        out = []
        for m in messages:
            headers = dict(m.headers or {})
            meta = m.metadata
            msg_id = headers.get("Nats-Msg-Id") or f"seq-{meta.sequence.stream}"
            out.append(Delivered(bytes(m.data), headers, msg_id, meta.num_delivered, m.subject, m))
        return out

    async def ack(self, msg: Delivered) -> None:
        await msg.raw.ack()

    async def nak(self, msg: Delivered) -> None:
        await msg.raw.nak(delay=RETRY_DELAY)

    async def publish_dead(self, msg: Delivered, headers: dict[str, str]) -> None:
        try:
            await self.js.publish(self.dead_letter, msg.data, headers=headers)
        except Exception:  # no stream captures the subject: at least a plain publish
            await self.nc.publish(self.dead_letter, msg.data, headers=headers)


def consumer_for(rt: Runtime, trigger: Trigger) -> QueueConsumer:
    """The consumer of the queue's broker (`queue.broker`)."""
    assert trigger.spec.queue is not None
    if trigger.spec.queue.broker == "rabbitmq":
        from bosun.triggers.rabbit import RabbitConsumer

        return RabbitConsumer(rt, trigger)
    return NatsConsumer(rt, trigger)


def _token(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).upper()


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
