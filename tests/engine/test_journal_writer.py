"""One journal writer: every event of every run reaches every listener, stamped by the writer.

Runs are driven through each way events enter a journal (creation, the step loop, an
approval, a resolve, a rollback, a watchdog finding in the loop and under a short lease, a
kill switch, a cancel), on SQLite and PostgreSQL, with a listener registered on the
runtime's writer; then what the listener saw is compared with `store.events` run by run.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Sequence

import orjson
import pytest

from bosun import Agent, Runtime, Worker, tool
from bosun.engine.journal import JournalWriter
from bosun.engine.state import rebuild
from bosun.journal.codec import event_to_dict
from bosun.journal.events import Event, Notified, RunFlagged
from bosun.observe.watchdog import Watchdog, WatchdogConfig


class ProcessDied(BaseException):
    """Stands for the process dying inside the tool: the engine does not catch it."""


LEDGER: list[str] = []
entered = asyncio.Event()
gate = asyncio.Event()


def reverse_charge(arguments: dict, result: dict) -> dict:
    LEDGER.append(f"reverse {arguments['amount']}")
    return {"reversed": result["charge_id"]}


@tool(effect="irreversible", undo=reverse_charge)
def charge(amount: int) -> dict:
    """Charge the customer."""
    LEDGER.append(f"charge {amount}")
    return {"charge_id": f"ch_{len(LEDGER)}"}


@tool(effect="irreversible")
def wire(amount: int) -> dict:
    """Wire money (the process dies the first time, after the money left)."""
    LEDGER.append(f"wire {amount}")
    if LEDGER.count(f"wire {amount}") == 1:
        raise ProcessDied
    return {"wired": amount}


@tool(effect="irreversible")
def pay(to: str) -> str:
    """Pay someone (needs an approval)."""
    LEDGER.append(f"pay {to}")
    return "paid"


@tool(effect="read", idempotent=True)
async def wait_here() -> str:
    """Tell the test it is running, then wait until it opens the gate."""
    entered.set()
    await gate.wait()
    return "done"


@pytest.fixture(autouse=True)
def fresh():
    global entered, gate
    LEDGER.clear()
    entered, gate = asyncio.Event(), asyncio.Event()  # one per test: events bind to a loop
    yield
    gate.set()


def agent(name: str, *turns: dict, **options) -> Agent:
    return Agent(
        name=name,
        model={"provider": "scripted", "turns": [*turns, {"content": "done"}]},
        tools=[charge, wire, pay, wait_here],
        **options,
    )


def call(name: str, **arguments: object) -> dict:
    return {"tool_calls": [{"name": name, "arguments": arguments}]}


NEEDS_APPROVAL = {
    "name": "pay-policy",
    "rules": [{"name": "pay-ok", "tools": ["pay"], "effect": "require_approval"}],
}


class Recorder:
    """A commit listener: what it was told, per run, as (seq, event)."""

    def __init__(self) -> None:
        self.seen: dict[str, list[tuple[int, Event]]] = defaultdict(list)

    def __call__(self, run_id: str, first_seq: int, events: Sequence[Event]) -> None:
        self.seen[run_id].extend((first_seq + i, e) for i, e in enumerate(events))


class Clock:
    """The writer's clock, remembering every time it handed out."""

    def __init__(self) -> None:
        self.given: set[float] = set()

    def __call__(self) -> float:
        t = time.time()
        self.given.add(t)
        return t


def shape(pairs: Sequence[tuple[int, Event]]) -> list[bytes]:
    return [orjson.dumps(event_to_dict(e, seq)) for seq, e in pairs]


async def drain(rt: Runtime) -> None:
    await Worker(rt, poll_interval=0.01).serve(exit_when_idle=True)


async def drive_everything(rt: Runtime) -> dict[str, str]:
    """One run per way of journaling; returns {what: run id}."""
    runs: dict[str, str] = {}

    # The step loop, and a rollback of its effects afterwards.
    done = await rt.run(agent("charger", call("charge", amount=5)), "charge 5")
    assert done.status == "succeeded"
    report = await rt.rollback(done.run_id, by="risk")
    assert report.compensated and LEDGER[-1] == "reverse 5"
    runs["loop + rollback"] = done.run_id

    # An approval: the run parks, a person approves, a worker continues it.
    parked = await rt.run(agent("payer", call("pay", to="ana"), policy=NEEDS_APPROVAL), "pay")
    assert parked.status == "waiting_approval"
    (approval,) = await rt.approvals()
    await rt.approve(approval.id, by="fin")
    await drain(rt)
    assert (await rt.result(parked.run_id)).status == "succeeded"
    runs["approval"] = parked.run_id

    # A resolve: the process dies inside an irreversible call, the run parks for a person.
    wiring = agent("wirer", call("wire", amount=7))
    with pytest.raises(ProcessDied):
        await rt.run(wiring, "wire 7")
    (dead,) = await rt.store.list_runs(agent="wirer", limit=1)
    assert (await rt.resume(dead.id)).status == "needs_attention"
    await rt.resolve(dead.id, by="ops", result={"wired": 7, "checked": "bank statement"})
    await drain(rt)
    assert (await rt.result(dead.id)).status == "succeeded"
    runs["resolve"] = dead.id

    # A watchdog finding journaled under a short lease (the run's worker died).
    orphan = await rt.submit(agent("orphan"), "go")
    assert await rt.store.claim("dead-worker", limit=1, lease_seconds=-1)  # expired at once
    dog = Watchdog(rt.store, WatchdogConfig(no_progress_after=0), runtime=rt)
    assert [f.run_id for f in await dog.check()] == [orphan]
    await drain(rt)  # a worker takes it over
    assert (await rt.result(orphan)).status == "succeeded"
    runs["watchdog, short lease"] = orphan

    # A watchdog finding on a run this process drives: buffered, committed with its step.
    task = asyncio.create_task(rt.run(agent("staller", call("wait_here")), "go"))
    await entered.wait()
    (finding,) = await dog.check()
    gate.set()
    assert (await task).status == "succeeded"
    runs["watchdog, in the loop"] = finding.run_id

    # A kill switch, and a cancel.
    await rt.kill("agent:doomed", reason="testing the writer", by="ops")
    killed = await rt.run(agent("doomed", call("charge", amount=1)), "x")
    assert killed.status == "killed"
    await rt.unkill("agent:doomed", by="ops")
    runs["kill"] = killed.run_id
    cancelled = await rt.submit(agent("cancelled"), "x")
    assert await rt.cancel(cancelled)
    await drain(rt)
    assert (await rt.result(cancelled)).status == "cancelled"
    runs["cancel"] = cancelled
    return runs


async def test_every_listener_sees_every_event_of_every_run(db_url):
    recorder, clock = Recorder(), Clock()
    async with Runtime(db_url) as rt:
        rt.journal.listen(recorder)
        rt.journal.clock = clock
        runs = await drive_everything(rt)
        journals = {run_id: await rt.store.events(run_id) for run_id in runs.values()}
        every_run = {r.id for r in await rt.store.list_runs(limit=100)}
    assert set(recorder.seen) == every_run == set(runs.values())
    for what, run_id in runs.items():
        stored, seen = journals[run_id], recorder.seen[run_id]
        assert [s for s, _ in seen] == list(range(1, len(stored) + 1)), what  # no gaps
        assert shape(seen) == shape(stored), what  # the same events, in the same order
    flagged = [e for pairs in journals.values() for _, e in pairs if isinstance(e, RunFlagged)]
    assert len(flagged) == 2
    kinds = {e.kind for pairs in journals.values() for _, e in pairs}
    for kind in ("attention_resolved", "tool_compensated", "approval_resolved", "run_flagged"):
        assert kind in kinds


async def test_times_are_set_by_the_writer_alone_and_never_go_back(db_url):
    clock = Clock()
    async with Runtime(db_url) as rt:
        rt.journal.clock = clock
        runs = await drive_everything(rt)
        journals = {run_id: await rt.store.events(run_id) for run_id in runs.values()}
        created = {run_id: (await rt.get_run(run_id)).created_at for run_id in runs.values()}
    for what, run_id in runs.items():
        times = [e.ts for _, e in journals[run_id]]
        assert all(t in clock.given for t in times), what  # nobody set a time by hand
        assert times == sorted(times), what
        assert created[run_id] == times[0], what  # the run was created when it started


def test_the_writer_clock_never_goes_back():
    times = iter([10.0, 12.0, 11.0, 13.0])  # the wall clock stepped back once
    writer = JournalWriter(None, clock=lambda: next(times))  # type: ignore[arg-type]
    stamped = [writer.stamp(Notified(call_id="c", tool="t", message="m")).ts for _ in range(4)]
    assert stamped == [10.0, 12.0, 12.0, 13.0]


def broken_listener(run_id: str, first_seq: int, events: Sequence[Event]) -> None:
    raise RuntimeError("this listener is broken")


async def test_a_raising_listener_is_logged_and_breaks_neither_the_run_nor_the_others(
    sqlite_path, caplog
):
    recorder = Recorder()
    async with Runtime(sqlite_path) as rt:
        rt.journal.listen(broken_listener)
        rt.journal.listen(recorder)
        with caplog.at_level(logging.ERROR, logger="bosun.journal"):
            result = await rt.run(agent("charger", call("charge", amount=3)), "charge 3")
        stored = await rt.store.events(result.run_id)
    assert result.status == "succeeded" and LEDGER == ["charge 3"]
    assert shape(recorder.seen[result.run_id]) == shape(stored)
    failures = [r for r in caplog.records if "journal listener" in r.getMessage()]
    assert failures and "this listener is broken" in (failures[0].exc_text or "")


async def test_a_store_operation_journaling_in_its_own_transaction_is_seen_too(db_url):
    """`append_via`: the seam for store operations that write events as part of a larger
    transaction (a wait's delivery): the writer stamps, the operation writes, listeners hear."""
    recorder, clock = Recorder(), Clock()
    async with Runtime(db_url) as rt:
        rt.journal.listen(recorder)
        rt.journal.clock = clock
        run_id = await rt.submit(agent("waiter"), "go")
        assert [r.id for r in await rt.store.claim(rt.owner, limit=1, lease_seconds=30)] == [run_id]
        state = rebuild(run_id, await rt.store.events(run_id))
        note = Notified(call_id="", tool="", message="delivered")

        async def deliver(events: Sequence[Event]) -> int | None:
            for event in events:
                state.apply(event)
            first = state.seq - len(events) + 1
            await rt.store.append(
                run_id, events, first_seq=first, owner=rt.owner, summary=state.summary()
            )
            return first

        async def lost_the_race(events: Sequence[Event]) -> int | None:
            return None

        assert await rt.journal.append_via(run_id, [note], deliver) == 2
        assert (
            await rt.journal.append_via(
                run_id, [Notified(call_id="", tool="", message="x")], lost_the_race
            )
            is None
        )
        await rt.store.release(run_id, rt.owner)
        stored = await rt.store.events(run_id)
    assert shape(recorder.seen[run_id]) == shape(stored) and len(stored) == 2
    assert stored[1][1].ts in clock.given
