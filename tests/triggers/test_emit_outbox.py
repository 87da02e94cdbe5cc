"""Emits are never lost and start their run once: a process SIGKILLed right after committing
an emit (before anything hands it on) leaves it in the outbox, and the next sweep delivers
it; a process SIGKILLed after creating the triggered run but before marking the emit
delivered makes the next sweep find that run, not start a second. SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bosun.engine.runtime import Runtime
from bosun.triggers.events import EventRouter
from bosun.triggers.runner import Triggers

HERE = Path(__file__).parent
pytestmark = pytest.mark.slow


def killed(mode: str, db: str, log: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    with open(log, "ab") as out:
        done = subprocess.run(
            [sys.executable, str(HERE / "emit_proc.py"), mode, db],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=60,
        )
    assert done.returncode == -signal.SIGKILL, log.read_text()


async def test_an_emit_survives_sigkills_around_its_delivery(db_url, tmp_path):
    log = tmp_path / "proc.log"
    killed("emit", db_url, log)  # died right after committing the emit
    async with Runtime(db_url) as rt:
        (emitter,) = await rt.store.list_runs(limit=10)
        pending = await rt.store.pending_emits(float("inf"))
        assert len(pending) == 1 and pending[0].id.startswith(f"{emitter.id}:")
        assert pending[0].run_id == emitter.id
        assert pending[0].event["data"] == {"order": 7}

    killed("deliver", db_url, log)  # died after starting the run, before marking the emit
    async with Runtime(db_url) as rt:
        runs = await rt.store.list_runs(limit=10)
        (started,) = [r for r in runs if r.id != emitter.id]
        assert started.tags["bosun.emitted_by"] == emitter.id
        assert started.input == "order 7"
        assert len(await rt.store.pending_emits(float("inf"))) == 1  # not marked yet

        triggers = Triggers.load(rt, str(HERE / "once_triggers.yaml"))
        router = EventRouter(rt, triggers.of_kind("event"))
        assert await router.sweep() == 1
        assert await router.sweep() == 0  # nothing left
        runs = await rt.store.list_runs(limit=10)
        assert sorted(r.id for r in runs) == sorted([emitter.id, started.id])  # no second run
        (row,) = await rt.store.triggers("on-once")
        assert (row.started, row.deduplicated) == (1, 1)
        assert await rt.store.pending_emits(float("inf")) == []
