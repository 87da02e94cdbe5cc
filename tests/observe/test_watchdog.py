"""Stuck-run detection on scripted runs that loop, stall and overspend; alert delivery."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from observe_helpers import UNLIMITED, call, lookup
from webhook_receiver import Receiver

from bosun import Agent, Runtime, tool
from bosun.journal.events import RunFlagged
from bosun.observe.alerts import WebhookAlerts
from bosun.observe.metrics import Metrics
from bosun.observe.watchdog import Watchdog, WatchdogConfig, repeating_pattern
from bosun.store.observing import Finding

gate = asyncio.Event()


@tool(effect="read", idempotent=True)
async def wait_here() -> str:
    """Block until the test opens the gate."""
    await gate.wait()
    return "done"


notes: list[str] = []


@tool(effect="read", idempotent=True)
async def note(text: str) -> str:
    """Write a note (the third one waits for the gate, so the looping run stays running)."""
    notes.append(text)
    if len(notes) % 3 == 0:
        await gate.wait()
    return text


def agent(name: str, *turns: dict, block: bool = True) -> Agent:
    end = [call("wait_here")] if block else []
    return Agent(
        name=name,
        model={"provider": "scripted", "turns": [*turns, *end, {"content": "ok"}]},
        tools=[lookup, note, wait_here],
        limits=UNLIMITED,
    )


async def start_blocked(
    rt: Runtime, a: Agent, blocker: str = "wait_here", count: int = 1
) -> tuple[asyncio.Task, str]:
    task = asyncio.create_task(rt.run(a, "go"))
    for _ in range(500):
        runs = await rt.store.list_runs(status="running", agent=a.name, limit=1)
        started = [
            e
            for _, e in (await rt.store.events(runs[0].id) if runs else [])
            if type(e).__name__ == "ToolStarted" and e.tool == blocker
        ]
        if len(started) >= count:
            return task, runs[0].id
        await asyncio.sleep(0.01)
    if task.done():
        raise AssertionError(f"the run ended before reaching {blocker}: {task.result()}")
    raise AssertionError(f"the run never reached {blocker}")


@pytest.fixture(autouse=True)
def closed_gate():
    global gate
    gate = asyncio.Event()  # one per test: an Event belongs to the loop that first waits on it
    notes.clear()
    yield
    gate.set()


def test_repeating_patterns_of_one_two_and_three_calls():
    a, b, c = ("a", "{}"), ("b", "{}"), ("c", "{}")
    assert repeating_pattern([a, a, a], 3) == [a]
    assert repeating_pattern([c, a, b, a, b, a, b], 3) == [a, b]
    assert repeating_pattern([a, b, c, a, b, c, a, b, c], 3) == [a, b, c]
    assert repeating_pattern([a, b, a, b, a, c], 3) is None
    assert repeating_pattern([("a", '{"n":1}'), ("a", '{"n":2}'), ("a", '{"n":3}')], 3) is None


async def test_watchdog_flags_a_run_cycling_between_two_calls_and_journals_it(sqlite_path):
    looping = agent(
        "looper",
        *[call("lookup", order="1"), call("note", text="again")] * 3,
        block=False,
    )
    async with Runtime(sqlite_path) as rt:
        metrics = Metrics(rt.store)
        dog = Watchdog(rt.store, WatchdogConfig(), metrics=metrics, runtime=rt)
        task, run_id = await start_blocked(rt, looping, blocker="note", count=3)
        findings = await dog.check()
        assert [(f.run_id, f.kind) for f in findings] == [(run_id, "repeating")]
        assert "lookup" in findings[0].detail and "note" in findings[0].detail
        assert await dog.check() == []  # recorded once
        gate.set()
        assert (await task).status == "succeeded"
        flagged = [e for _, e in await rt.store.events(run_id) if isinstance(e, RunFlagged)]
        stored = await rt.store.list_findings(run_id=run_id)
    assert [(e.finding, e.paused) for e in flagged] == [("repeating", False)]
    assert [f.kind for f in stored] == ["repeating"]
    assert metrics.findings.labels("looper", "repeating")._value.get() == 1


async def test_watchdog_flags_a_stalled_run_and_can_pause_it(sqlite_path):
    async with Runtime(sqlite_path) as rt:
        dog = Watchdog(rt.store, WatchdogConfig(no_progress_after=0.2, pause=True), runtime=rt)
        task, run_id = await start_blocked(rt, agent("staller", call("lookup", order="9")))
        assert await dog.check() == []
        await asyncio.sleep(0.3)
        findings = await dog.check()
        assert [(f.kind, f.run_id) for f in findings] == [("no_progress", run_id)]
        gate.set()
        result = await task
        events = await rt.store.events(run_id)
        assert result.status == "paused"  # stopped at the next step boundary, not ended
        assert (await rt.get_run(run_id)).lease_owner is None
        assert await rt.unpause(run_id)
        resumed = await rt.resume(run_id)
        after = [e for _, e in await rt.store.events(run_id)]
    assert [e.kind for _, e in events][-1] == "run_paused"
    flagged = [e for _, e in events if isinstance(e, RunFlagged)]
    assert [(e.finding, e.paused) for e in flagged] == [("no_progress", True)]
    assert resumed.status == "succeeded"
    assert [e.tool for e in after if e.kind == "tool_started"] == [
        "lookup",
        "wait_here",
    ]  # once each


async def test_watchdog_flags_a_run_spending_far_above_its_agents_usual_rate(sqlite_path):
    cheap = {"input_tokens": 100, "output_tokens": 10}
    async with Runtime(sqlite_path) as rt:
        for _ in range(3):
            usual = Agent(
                name="spender",
                model={
                    "provider": "scripted",
                    "turns": [{**call("lookup", order="1"), **cheap}, {"content": "ok", **cheap}],
                },
                tools=[lookup],
            )
            assert (await rt.run(usual, "go")).status == "succeeded"
        dog = Watchdog(rt.store, WatchdogConfig(spend_factor=5), runtime=rt)
        expensive = {**call("lookup", order="1"), "input_tokens": 2_000_000, "output_tokens": 10}
        task, run_id = await start_blocked(rt, agent("spender", expensive))
        findings = await dog.check()
        gate.set()
        await task
    assert [(f.kind, f.run_id) for f in findings] == [("overspending", run_id)]
    assert "median" in findings[0].detail


async def test_a_finding_on_a_run_no_live_worker_holds_is_journaled_under_a_short_lease(
    sqlite_path,
):
    async with Runtime(sqlite_path) as rt:
        run_id = await rt.submit(agent("orphan"), "go")
        await rt.store.claim("dead-worker", limit=1, lease_seconds=0.01)  # then it died
        await asyncio.sleep(0.05)
        dog = Watchdog(rt.store, WatchdogConfig(no_progress_after=0))
        findings = await dog.check()
        events = await rt.store.events(run_id)
        run = await rt.store.get_run(run_id)
    assert [f.kind for f in findings] == ["no_progress"]
    assert [type(e).__name__ for _, e in events] == ["RunStarted", "RunFlagged"]
    assert run.status == "running" and run.lease_owner is None  # a worker can take it over


async def test_alert_webhook_is_retried_after_a_failure():
    async with Receiver(fail_first=1) as receiver:
        sink = WebhookAlerts(receiver.url, backoff=0.01)
        finding = Finding("run_1", "no_progress", "stalled", 3, time.time(), "support", "acme")
        assert await sink.send(finding) is True
    assert [status for status, _ in receiver.requests] == [500, 200]
    body = json.loads(receiver.requests[-1][1])
    assert body["type"] == "bosun.run_flagged"
    assert (body["run_id"], body["kind"], body["agent"]) == ("run_1", "no_progress", "support")


async def test_alert_webhook_gives_up_after_its_attempts():
    async with Receiver(fail_first=10) as receiver:
        sink = WebhookAlerts(receiver.url, attempts=3, backoff=0.01)
        finding = Finding("run_1", "repeating", "loop", 0, time.time())
        assert await sink.send(finding) is False
    assert len(receiver.requests) == 3
