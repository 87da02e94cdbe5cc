"""Queue triggers on a real RabbitMQ (127.0.0.1:5672, or $BOSUN_TEST_AMQP_URL): the same
consumer as NATS's over a quorum queue: a message published twice with one message id is
one run, a full trigger leaves messages queued, a poison message is dead-lettered."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from pathlib import Path

import pytest

from bosun.engine.runtime import Runtime
from bosun.engine.worker import Worker
from bosun.triggers.runner import Triggers

HERE = Path(__file__).parent
AMQP_URL = os.environ.get("BOSUN_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


@pytest.fixture
async def channel():
    import aio_pika

    try:
        connection = await aio_pika.connect(AMQP_URL, timeout=3)
    except Exception as exc:
        pytest.skip(f"RabbitMQ not reachable at {AMQP_URL} ({exc}); set BOSUN_TEST_AMQP_URL")
    ch = await connection.channel()
    yield ch
    await connection.close()


async def until(what, check, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not (got := await check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)
    return got


async def test_rabbitmq_dedup_backpressure_and_dead_letters(tmp_path, channel, sqlite_path):
    import aio_pika

    name = f"rabbit-{uuid.uuid4().hex[:6]}"
    queue = f"bosun.test.{uuid.uuid4().hex[:8]}"
    path = tmp_path / "t.yaml"
    path.write_text(
        f"triggers:\n  - name: {name}\n    target: {HERE / 'echo.yaml'}\n    input: .text\n"
        f"    queue: {{broker: rabbitmq, subject: {queue}, url: '{AMQP_URL}',"
        " max_in_flight: 2, max_deliveries: 2}\n"
    )
    source = await channel.declare_queue(queue, durable=True, arguments={"x-queue-type": "quorum"})

    async def publish(body: bytes, msg_id: str) -> None:
        await channel.default_exchange.publish(
            aio_pika.Message(body, message_id=msg_id), routing_key=queue
        )

    await publish(b'{"text": "job 0"}', "m-0")
    await publish(b'{"text": "job 0"}', "m-0")  # the producer retried: the same id
    for i in (1, 2):
        await publish(f'{{"text": "job {i}"}}'.encode(), f"m-{i}")
    await publish(b"garbage", "m-bad")

    async def runs():
        return await rt.store.list_runs(tag=("bosun.trigger", name), limit=100)

    async with Runtime(sqlite_path) as rt:
        triggers = Triggers.load(rt, str(path))
        stop = asyncio.Event()
        await triggers.start(stop)
        try:
            await until("two runs", lambda: _len_is(runs, 2))
            declared = await channel.declare_queue(
                queue, durable=True, arguments={"x-queue-type": "quorum"}, passive=True
            )
            assert declared.declaration_result.message_count >= 1  # full: left queued
            assert len(await runs()) == 2
            worker_stop = asyncio.Event()
            task = asyncio.create_task(Worker(rt, poll_interval=0.05).serve(worker_stop))

            async def settled():
                row = (await rt.store.triggers(name))[0]
                return len(await runs()) == 3 and row.dead_lettered == 1 and row.deduplicated == 1

            await until("every message settled", settled)
            worker_stop.set()
            await task
        finally:
            stop.set()
            await triggers.stop()
    assert sorted(r.input for r in await _final(sqlite_path, name)) == ["job 0", "job 1", "job 2"]
    dead = await channel.declare_queue(
        f"{queue}.dead", durable=True, arguments={"x-queue-type": "quorum"}
    )
    msg = await dead.get(timeout=5)
    assert msg.body == b"garbage"
    assert msg.headers["Bosun-Original-Id"] == "m-bad"
    assert msg.headers["Bosun-Deliveries"] == "2"
    await msg.ack()
    await dead.delete(if_unused=False, if_empty=False)
    await source.delete(if_unused=False, if_empty=False)


async def _len_is(fn, n) -> bool:
    return len(await fn()) == n


async def _final(db, name):
    async with Runtime(db) as rt:
        return await rt.store.list_runs(tag=("bosun.trigger", name), limit=100)
