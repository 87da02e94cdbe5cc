"""Queue triggers on RabbitMQ (aio-pika): the same consumer as NATS's (`queue.py`), over a
durable quorum queue named by `queue.subject`.

Why a quorum queue: it counts deliveries (`x-delivery-count`), which the dead-letter rule
needs; a classic queue does not. Messages are pulled one `basic.get` at a time up to the
free slots (backpressure: a full trigger stops getting, so messages stay queued), acked
only after their run is created; a process that dies leaves its unacked messages to the
broker, which delivers them again, and their `message_id` (else a digest of the body)
finds the run made the first time. Dead letters go to the queue `<subject>.dead`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from typing import Any

from bosun.triggers.queue import RETRY_DELAY, Delivered, QueueConsumer


class RabbitConsumer(QueueConsumer):
    connection: Any = None
    channel: Any = None
    source: Any = None

    async def connect(self) -> None:
        import aio_pika

        self.connection = await aio_pika.connect_robust(self.queue.url, timeout=5)
        self.channel = await self.connection.channel()
        self.source = await self.channel.declare_queue(
            self.queue.subject, durable=True, arguments={"x-queue-type": "quorum"}
        )
        await self.channel.declare_queue(
            self.dead_letter, durable=True, arguments={"x-queue-type": "quorum"}
        )

    async def close(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(Exception):
                await self.connection.close()
            self.connection = None

    async def pull(self, n: int) -> list[Delivered]:
        out: list[Delivered] = []
        while len(out) < n:
            message = await self.source.get(no_ack=False, fail=False, timeout=5)
            if message is None:
                break
            headers = {k: str(v) for k, v in (message.headers or {}).items()}
            if message.content_type:
                headers.setdefault("Content-Type", message.content_type)
            before = int(headers.get("x-delivery-count", "0"))
            msg_id = message.message_id or "sha256-" + hashlib.sha256(message.body).hexdigest()
            out.append(
                Delivered(message.body, headers, msg_id, before + 1, self.queue.subject, message)
            )
        if not out:
            await asyncio.sleep(min(1.0, self.poll_interval))
        return out

    async def ack(self, msg: Delivered) -> None:
        await msg.raw.ack()

    async def nak(self, msg: Delivered) -> None:
        await asyncio.sleep(RETRY_DELAY)
        await msg.raw.nack(requeue=True)

    async def publish_dead(self, msg: Delivered, headers: dict[str, str]) -> None:
        import aio_pika

        dead = aio_pika.Message(
            msg.data,
            headers=headers,
            message_id=headers["Nats-Msg-Id"],
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        await self.channel.default_exchange.publish(dead, routing_key=self.dead_letter)
