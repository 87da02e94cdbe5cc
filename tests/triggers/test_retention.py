"""Retention of triggers' rows: `bosun gc` deletes deliveries (the dedup and replay record)
and delivered emits older than `--deliveries-older-than`, keeps newer ones and undelivered
emits, and refuses a retention no longer than the widest webhook replay window."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

from bosun.engine.runtime import Runtime
from bosun.engine.worker import Worker
from bosun.triggers.events import EventRouter
from bosun.triggers.runner import Triggers
from bosun.triggers.target import load_target

HERE = Path(__file__).parent


async def test_gc_deletes_old_deliveries_and_delivered_emits_only(db_url):
    async with Runtime(db_url) as rt:
        triggers = Triggers.load(rt, str(HERE / "once_triggers.yaml"))
        await rt.store.ensure_trigger("on-once", "default")
        await load_target(str(HERE / "once.yaml")).submit(
            rt, {"order": 1}, key="emitter", tenant="default", tags={}
        )
        stop = asyncio.Event()
        worker = Worker(rt, poll_interval=0.05)
        task = asyncio.create_task(worker.serve(stop))
        try:
            deadline = time.monotonic() + 30
            while not await rt.store.pending_emits(float("inf")):
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
        finally:
            stop.set()
            await task
        router = EventRouter(rt, triggers.of_kind("event"))
        assert await router.sweep() == 1
        before = time.time() - 3600
        assert await rt.store.gc_triggers(before) == (0, 0)  # all of it is newer
        future = time.time() + 1
        assert await rt.store.gc_triggers(future, dry_run=True) == (1, 1)
        assert await rt.store.gc_triggers(future) == (1, 1)
        assert await rt.store.gc_triggers(future) == (0, 0)
        (row,) = await rt.store.triggers("on-once")
        assert row.started == 1  # counters are not deliveries: they stay


def bosun(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bosun", *args], capture_output=True, text=True, timeout=60
    )


def test_gc_cli_keeps_deliveries_and_refuses_a_retention_inside_the_replay_window(tmp_path):
    db = str(tmp_path / "b.db")
    ok = bosun("gc", "--db", db, "--deliveries-older-than", "2d")
    assert ok.returncode == 0, ok.stderr
    assert "removed 0 trigger deliveries and 0 delivered emits older than 2 days" in ok.stdout
    short = bosun("gc", "--db", db, "--deliveries-older-than", "12h")
    assert short.returncode == 2
    assert "longer than the widest webhook replay window (24 h" in short.stderr
