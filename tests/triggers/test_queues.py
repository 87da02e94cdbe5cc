"""Queue triggers on a real NATS JetStream (127.0.0.1:4222, or $BOSUN_TEST_NATS_URL): a
consumer SIGKILLed between creating a run and acking its message loses nothing and runs
nothing twice; a full trigger stops pulling and drops nothing; a poison message goes to
the dead-letter subject after its deliveries."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from bosun.engine.runtime import Runtime
from bosun.engine.worker import Worker
from bosun.triggers.runner import Triggers

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
NATS_URL = os.environ.get("BOSUN_TEST_NATS_URL", "nats://127.0.0.1:4222")


async def _nats():
    import nats

    try:
        return await nats.connect(NATS_URL, connect_timeout=2, max_reconnect_attempts=0)
    except Exception as exc:
        pytest.skip(f"NATS not reachable at {NATS_URL} ({exc}); set BOSUN_TEST_NATS_URL")


@pytest.fixture
async def js():
    nc = await _nats()
    yield nc.jetstream()
    await nc.close()


def triggers_file(tmp_path: Path, name: str, **queue: object) -> tuple[str, str]:
    """A triggers file with one queue trigger on a subject of its own: (path, subject)."""
    subject = f"bosun.test.{uuid.uuid4().hex[:10]}"
    options = ", ".join(
        f"{k}: {v}" for k, v in {"subject": subject, "url": NATS_URL, **queue}.items()
    )
    path = tmp_path / "triggers.yaml"
    path.write_text(
        "triggers:\n"
        f"  - name: {name}\n"
        f"    target: {HERE / 'echo.yaml'}\n"
        "    input: .text\n"
        f"    queue: {{{options}}}\n"
    )
    return str(path), subject


async def until(what: str, check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        got = await check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def runs_of(rt: Runtime, name: str) -> list:
    return await rt.store.list_runs(tag=("bosun.trigger", name), limit=1000)


async def consumer_state(js, triggers: Triggers, name: str):
    consumer = triggers.all[name]
    stream = "BOSUN_" + "".join(c if c.isalnum() else "_" for c in name).upper()
    durable = "bosun-" + stream.removeprefix("BOSUN_")
    assert consumer
    return await js.consumer_info(stream, durable)


@pytest.mark.slow
async def test_a_consumer_killed_between_creating_the_run_and_acking_loses_and_repeats_nothing(
    tmp_path, js, db_url
):
    name = f"kill-{uuid.uuid4().hex[:6]}"
    path, subject = triggers_file(tmp_path, name, ack_wait_seconds=1)
    async with Runtime(db_url) as rt:
        triggers = Triggers.load(rt, path)  # creates nothing: the processes do
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        marker = tmp_path / "created"
        script = str(HERE / "consumer_proc.py")
        first = subprocess.Popen([sys.executable, script, db_url, path, str(marker)], env=env)
        try:

            async def subscribed():
                try:
                    await consumer_state(js, triggers, name)
                    return True
                except Exception:
                    return False

            await until("the consumer to subscribe", subscribed)
            await js.publish(subject, b'{"text": "frame 1"}', headers={"Nats-Msg-Id": "m-1"})
            await until("the run to be created", lambda: asyncio.sleep(0, marker.exists()))
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        finally:
            if first.poll() is None:
                first.kill()
        runs = await runs_of(rt, name)
        assert len(runs) == 1  # created before the kill, durably
        info = await consumer_state(js, triggers, name)
        assert info.num_ack_pending + info.num_pending == 1  # never acked: not lost
        # The recovery is a plain `bosun worker --triggers FILE`: it takes the redelivery.
        second = subprocess.Popen(
            [sys.executable, "-m", "bosun", "worker", "--triggers", path, "--db", db_url],
            env=env,
            stderr=subprocess.DEVNULL,
        )
        try:

            async def settled():
                i = await consumer_state(js, triggers, name)
                return i.num_ack_pending == 0 and i.num_pending == 0

            await until("the redelivery to be acked", settled)
        finally:
            second.send_signal(signal.SIGKILL)
            second.wait(10)
        again = await runs_of(rt, name)
        assert [r.id for r in again] == [runs[0].id]  # the redelivery found the same run
        row = (await rt.store.triggers(name))[0]
        # Killed before it linked the delivery to the run: the redelivery links it, so the
        # one run is counted started once (and the message received once).
        assert (row.received, row.started) == (1, 1)


async def test_a_full_trigger_stops_pulling_and_drops_nothing(tmp_path, js, sqlite_path):
    name = f"full-{uuid.uuid4().hex[:6]}"
    path, subject = triggers_file(tmp_path, name, max_in_flight=2)
    async with Runtime(sqlite_path) as rt:
        triggers = Triggers.load(rt, path)
        stop = asyncio.Event()
        await triggers.start(stop)
        try:
            await until("the consumer to subscribe", lambda: subscribed(js, triggers, name))
            for i in range(7):
                await js.publish(subject, f'{{"text": "job {i}"}}'.encode())
            await until("two runs", lambda: count_is(rt, name, 2))
            # Full: the other five stay in the stream, none taken, none dropped.
            info = await until(
                "the consumer to stop pulling", lambda: pending_is(js, triggers, name, 5)
            )
            assert info.num_ack_pending == 0
            assert len(await runs_of(rt, name)) == 2
            # A worker ends the runs in flight; the trigger pulls again, until all are in.
            worker = Worker(rt, poll_interval=0.05)
            done = asyncio.Event()
            task = asyncio.create_task(worker.serve(done))
            await until("seven runs", lambda: count_is(rt, name, 7))
            await until("all to finish", lambda: all_ended(rt, name, 7))
            done.set()
            await task
        finally:
            stop.set()
            await triggers.stop()
        runs = await runs_of(rt, name)
        assert sorted(r.input for r in runs) == [f"job {i}" for i in range(7)]
        assert (await rt.store.triggers(name))[0].started == 7


async def test_a_poison_message_goes_to_the_dead_letter_subject(tmp_path, js, sqlite_path):
    name = f"poison-{uuid.uuid4().hex[:6]}"
    path, subject = triggers_file(tmp_path, name, max_deliveries=3)
    async with Runtime(sqlite_path) as rt:
        triggers = Triggers.load(rt, path)
        stop = asyncio.Event()
        await triggers.start(stop)
        try:
            await until("the consumer to subscribe", lambda: subscribed(js, triggers, name))
            await js.publish(subject, b"not json at all", headers={"Nats-Msg-Id": "bad-1"})
            # JSON, but its input holds a NUL, which no run's input may: refused at creation.
            await js.publish(subject, b'{"text": "a\\u0000b"}', headers={"Nats-Msg-Id": "bad-2"})
            await js.publish(subject, b'{"text": "fine"}', headers={"Nats-Msg-Id": "ok-1"})

            async def dead() -> bool:
                rows = await rt.store.triggers(name)
                return bool(rows and rows[0].dead_lettered == 2)

            await until("the poison messages to be dead-lettered", dead)
            await until("the good one's run", lambda: count_is(rt, name, 1))
        finally:
            stop.set()
            await triggers.stop()
        stream = "BOSUN_" + "".join(c if c.isalnum() else "_" for c in name).upper()
        dead_letters, seq = {}, 1
        for _ in range(2):  # the stream's dead-letter subject, in whatever order they came
            found = await js.get_msg(stream, subject=f"{subject}.dead", next=True, seq=seq)
            dead_letters[found.headers["Bosun-Original-Id"]] = found
            seq = found.seq + 1
        msg = dead_letters["bad-1"]
        assert msg.data == b"not json at all"
        assert msg.headers["Bosun-Deliveries"] == "3"
        assert "JSONDecodeError" in msg.headers["Bosun-Error"]
        assert "NUL" in dead_letters["bad-2"].headers["Bosun-Error"]
        info = await consumer_state(js, triggers, name)
        assert info.num_pending == 0 and info.num_ack_pending == 0


async def subscribed(js, triggers, name) -> bool:
    try:
        await consumer_state(js, triggers, name)
        return True
    except Exception:
        return False


async def count_is(rt, name, n) -> bool:
    return len(await runs_of(rt, name)) == n


async def pending_is(js, triggers, name, n):
    info = await consumer_state(js, triggers, name)
    return info if info.num_pending == n else None


async def all_ended(rt, name, n) -> bool:
    runs = await runs_of(rt, name)
    return len(runs) == n and all(r.status == "succeeded" for r in runs)


async def test_the_camera_example_starts_one_run_per_frame_with_the_frame_attached(
    tmp_path, js, sqlite_path
):
    """examples/camera/triggers.yaml on a subject of its own: four PNG frames published
    (twice: the second publish is deduplicated by the broker or by the key) -> four runs,
    each with its frame as an artifact reference."""
    subject = f"camera.test.{uuid.uuid4().hex[:8]}"
    name = f"camera-{uuid.uuid4().hex[:6]}"
    text = (ROOT / "examples" / "camera" / "triggers.yaml").read_text()
    text = text.replace("camera.frames", subject).replace("name: camera-frames", f"name: {name}")
    text = text.replace("target: watcher.yaml", f"target: {ROOT / 'examples/camera/watcher.yaml'}")
    path = tmp_path / "camera-triggers.yaml"
    path.write_text(text)
    async with Runtime(sqlite_path) as rt:
        triggers = Triggers.load(rt, str(path))
        stop = asyncio.Event()
        await triggers.start(stop)
        try:
            await until("the consumer to subscribe", lambda: subscribed(js, triggers, name))
            stream = "BOSUN_" + "".join(c if c.isalnum() else "_" for c in name).upper()
            publish = [
                sys.executable,
                str(ROOT / "examples" / "camera" / "publish.py"),
                "--subject",
                subject,
                "--stream",
                stream,
                "--url",
                NATS_URL,
            ]
            for _ in range(2):
                subprocess.run(publish, check=True, capture_output=True)
            await until("four runs", lambda: count_is(rt, name, 4))
        finally:
            stop.set()
            await triggers.stop()
        runs = await runs_of(rt, name)
        assert len(runs) == 4
        for run in runs:
            started = (await rt.store.events(run.id))[0][1]
            (ref,) = started.attachments
            assert ref["mime"] == "image/png"
            assert ref["artifact"].startswith("sha256:")
            assert run.input.startswith("Camera frame 0")
