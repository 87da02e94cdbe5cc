"""Events from runs: a workflow's emitted CloudEvent starts the workflow an event trigger
names; a chain that would go deeper than `max_depth` is refused, counted and audited."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from pathlib import Path

from bosun.engine.runtime import Runtime
from bosun.engine.worker import Worker
from bosun.triggers.events import EventRouter
from bosun.triggers.runner import Triggers
from bosun.triggers.target import load_target

HERE = Path(__file__).parent


async def test_an_emitted_event_starts_a_workflow_and_a_loop_stops_at_its_depth(db_url):
    async with Runtime(db_url) as rt:
        triggers = Triggers.load(rt, str(HERE / "events.yaml"))
        assert triggers.all["ping-again"].target.kind == "workflow"
        stop = asyncio.Event()
        await triggers.start(stop)
        worker = Worker(rt, poll_interval=0.05)
        task = asyncio.create_task(worker.serve(stop))
        try:
            first = await load_target(str(HERE / "ping.yaml")).submit(
                rt, {"n": 0}, key="first-ping", tenant="default", tags={}
            )
            deadline = time.monotonic() + 30
            while True:
                row = (await rt.store.triggers("ping-again"))[0]
                runs = await rt.store.list_runs(limit=100)
                ended = all(r.status == "succeeded" for r in runs)
                if row.rejected == 1 and ended and len(runs) == 4:
                    break
                assert time.monotonic() < deadline, (row, [(r.id, r.status) for r in runs])
                await asyncio.sleep(0.05)
        finally:
            stop.set()
            await task
            await triggers.stop()
        chain = sorted(runs, key=lambda r: int(r.tags.get("bosun.depth", "0")))
        assert chain[0].id == first
        assert [json.loads(r.input)["n"] for r in chain] == [0, 1, 2, 3]
        assert [r.tags.get("bosun.depth") for r in chain] == [None, "1", "2", "3"]
        for parent, child in itertools.pairwise(chain):
            assert child.tags["bosun.emitted_by"] == parent.id
        assert (row.received, row.started, row.rejected) == (4, 3, 1)
        refused = [
            r.entry
            for r in await rt.store.audit_records()
            if r.entry.action == "trigger_loop_refused"
        ]
        assert len(refused) == 1
        assert refused[0].actor == f"run:{chain[-1].id}"
        assert refused[0].data["depth"] == 4


async def test_two_processes_sweeping_the_same_emits_start_each_run_once(db_url):
    async with Runtime(db_url) as rt, Runtime(db_url) as other:
        await rt.store.ensure_trigger("on-once", "default")
        once = load_target(str(HERE / "once.yaml"))
        for n in range(5):
            await once.submit(rt, {"order": n}, key=f"emitter-{n}", tenant="default", tags={})
        stop = asyncio.Event()
        task = asyncio.create_task(Worker(rt, poll_interval=0.05).serve(stop))
        try:
            deadline = time.monotonic() + 30
            while len(await rt.store.pending_emits(float("inf"))) < 5:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
        finally:
            stop.set()
            await task
        routers = [
            EventRouter(r, Triggers.load(r, str(HERE / "once_triggers.yaml")).of_kind("event"))
            for r in (rt, other)
        ]
        marked = await asyncio.gather(*(router.sweep() for router in routers))
        assert sum(marked) == 5  # each emit marked by one of them
        started = [r for r in await rt.store.list_runs(limit=100) if "bosun.emitted_by" in r.tags]
        assert sorted(r.input for r in started) == [f"order {n}" for n in range(5)]
        assert (await rt.store.triggers("on-once"))[0].started == 5
        assert await rt.store.pending_emits(float("inf")) == []
