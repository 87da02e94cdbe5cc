"""Durable waits, on both stores: a tool returns `bosun.Wait`, the run parks holding no worker,
and whatever it waits for (a signal, a timer, a child run, a remote task, a deadline) wakes it
through one path; the result enters the journal exactly once."""

from __future__ import annotations

import asyncio
import time

import pytest

from bosun import Agent, RunAlreadyFinished, Runtime, SpecError, Wait, Worker, tool
from bosun.journal.events import RunWaiting, ToolFinished, WaitRequested, WaitResolved


@tool(effect="read", idempotent=True)
def ask_warehouse(order: str) -> Wait:
    """Ask the warehouse; its answer arrives as the `stock` signal."""
    return Wait(signal="stock", deadline=3600, on_deadline={"in_stock": None})


@tool(effect="read", idempotent=True)
def ask_briefly(order: str) -> Wait:
    """Ask, but give up after a moment."""
    return Wait(signal="stock", deadline=0.3, on_deadline={"in_stock": "unknown"})


@tool(effect="read", idempotent=True)
def nap(seconds: float) -> Wait:
    """Sleep durably."""
    return Wait(timer=seconds, on_deadline="rested")


@tool(effect="read", idempotent=True)
def await_child(run_id: str) -> Wait:
    """Wait for another run to finish."""
    return Wait(child=run_id)


@tool(effect="read", idempotent=True)
def await_remote(task: str) -> Wait:
    """Wait for a remote task."""
    return Wait(remote=task)


def scripted(*turns: dict) -> dict:
    return {"provider": "scripted", "turns": list(turns)}


def call(name: str, **arguments: object) -> dict:
    return {"tool_calls": [{"name": name, "arguments": arguments}]}


def agent(name: str, *tools, first: dict) -> Agent:
    return Agent(name=name, model=scripted(first, {"content": "done"}), tools=list(tools))


def of(events, kind):
    return [e for _, e in events if isinstance(e, kind)]


async def drain(rt: Runtime, *, until: str | None = None, timeout: float = 10.0) -> None:
    """Run a worker until nothing is left to do (or run `until` has ended)."""
    stop = asyncio.Event()
    worker = asyncio.create_task(Worker(rt, poll_interval=0.02).serve(stop))
    try:
        if until is not None:
            await rt.wait(until, timeout=timeout, poll=0.02)
        else:
            await asyncio.sleep(0.3)
    finally:
        stop.set()
        await worker


async def parked(rt: Runtime, run_id: str) -> None:
    """Drive a freshly submitted run until it parks."""
    await Worker(rt, poll_interval=0.01).serve(exit_when_idle=True)
    run = await rt.get_run(run_id)
    assert run.status == "waiting", run.reason
    assert run.lease_owner is None  # a waiting run holds no worker


async def test_signal_after_the_wait_wakes_the_run_with_its_payload(db_url):
    async with Runtime(db_url) as rt:
        a = agent("stock", ask_warehouse, first=call("ask_warehouse", order="A1"))
        rt.register(a)
        run_id = await rt.submit(a, "is A1 in stock?")
        await parked(rt, run_id)
        assert await rt.signal(run_id, "stock", {"in_stock": 3}) is not None
        await drain(rt, until=run_id)
        events = await rt.events(run_id)
        assert (await rt.get_run(run_id)).status == "succeeded"
        [resolved] = of(events, WaitResolved)
        assert resolved.status == "settled" and resolved.result == {"in_stock": 3}
        finished = [e for e in of(events, ToolFinished) if e.call_id == resolved.call_id]
        assert finished[0].result == {"in_stock": 3}  # the model saw the payload


async def test_signal_before_the_wait_is_kept_for_it(db_url):
    async with Runtime(db_url) as rt:
        a = agent("early", ask_warehouse, first=call("ask_warehouse", order="A1"))
        rt.register(a)
        run_id = await rt.submit(a, "is A1 in stock?")
        assert await rt.signal(run_id, "stock", {"in_stock": 7}) is None  # nobody waits yet
        await drain(rt, until=run_id)
        events = await rt.events(run_id)
        [resolved] = of(events, WaitResolved)
        assert resolved.result == {"in_stock": 7}


async def test_racing_deliveries_settle_the_wait_once_and_journal_once(db_url):
    async with Runtime(db_url) as rt, Runtime(db_url) as other:
        a = agent("race", ask_warehouse, first=call("ask_warehouse", order="A1"))
        rt.register(a)
        run_id = await rt.submit(a, "go")
        await parked(rt, run_id)
        [wait] = await rt.store.waits(run_id)
        wins = await asyncio.gather(
            rt.store.settle_wait(wait.id, {"from": "one"}),
            other.store.settle_wait(wait.id, {"from": "two"}),
            rt.store.settle_wait(wait.id, {"from": "three"}),
        )
        assert sorted(wins) == [False, False, True]
        await drain(rt, until=run_id)
        events = await rt.events(run_id)
        assert len(of(events, WaitResolved)) == 1
        assert of(events, WaitResolved)[0].result == (await rt.store.get_wait(wait.id)).result


async def test_a_deadline_settles_the_wait_with_its_declared_outcome(db_url):
    async with Runtime(db_url) as rt:
        a = agent("late", ask_briefly, first=call("ask_briefly", order="A1"))
        rt.register(a)
        run_id = await rt.submit(a, "go")
        await drain(rt, until=run_id)
        events = await rt.events(run_id)
        [resolved] = of(events, WaitResolved)
        assert resolved.status == "expired"
        assert resolved.result == {"in_stock": "unknown"}
        # the run went on and ended: a late answer is refused, not lost silently
        with pytest.raises(RunAlreadyFinished):
            await rt.signal(run_id, "stock", {"in_stock": 1})


async def test_a_timer_fires_and_the_run_goes_on(db_url):
    async with Runtime(db_url) as rt:
        a = agent("sleepy", nap, first=call("nap", seconds=0.2))
        rt.register(a)
        run_id = await rt.submit(a, "rest")
        started = time.time()
        await drain(rt, until=run_id)
        events = await rt.events(run_id)
        [resolved] = of(events, WaitResolved)
        assert resolved.status == "settled" and resolved.result == "rested"
        assert resolved.ts - started >= 0.2
        # The run parked on the wait its journal requested (the park itself names none).
        assert [e.wait_id for e in of(events, WaitRequested)] == [resolved.wait_id]
        assert of(events, RunWaiting)[0].reason == "waiting for 1 wait(s)"


async def test_a_parent_waits_for_its_child_and_gets_its_outcome(db_url):
    async with Runtime(db_url) as rt:
        child = Agent(name="child", model=scripted({"content": "42"}), tools=[])
        rt.register(child)
        child_id = await rt.submit(child, "compute")
        parent = agent("parent", await_child, first=call("await_child", run_id=child_id))
        rt.register(parent)
        run_id = await rt.submit(parent, "delegate")
        await drain(rt, until=run_id)
        [resolved] = of(await rt.events(run_id), WaitResolved)
        assert resolved.result["status"] == "succeeded"
        assert resolved.result["output"] == "42"


async def test_a_remote_task_completes_the_wait(db_url):
    async with Runtime(db_url) as rt:
        a = agent("remote", await_remote, first=call("await_remote", task="job-9"))
        rt.register(a)
        run_id = await rt.submit(a, "go")
        await parked(rt, run_id)
        assert len(await rt.complete_remote("job-9", {"done": True})) == 1
        assert await rt.complete_remote("job-9", {"done": False}) == []  # once
        await drain(rt, until=run_id)
        [resolved] = of(await rt.events(run_id), WaitResolved)
        assert resolved.result == {"done": True}


async def test_cancelling_a_waiting_run_ends_it_and_cancels_its_wait(db_url):
    async with Runtime(db_url) as rt:
        a = agent("cancel", ask_warehouse, first=call("ask_warehouse", order="A1"))
        rt.register(a)
        run_id = await rt.submit(a, "go")
        await parked(rt, run_id)
        assert await rt.cancel(run_id)
        await drain(rt, until=run_id)
        assert (await rt.get_run(run_id)).status == "cancelled"
        [wait] = await rt.store.waits(run_id)
        assert wait.status == "cancelled"
        with pytest.raises(RunAlreadyFinished, match="cancelled"):
            await rt.signal(run_id, "stock", {})


async def test_the_wait_request_is_journaled_with_its_deadline(db_url):
    async with Runtime(db_url) as rt:
        a = agent("journal", ask_warehouse, first=call("ask_warehouse", order="A1"))
        rt.register(a)
        run_id = await rt.submit(a, "go")
        before = time.time()
        await parked(rt, run_id)
        [requested] = of(await rt.events(run_id), WaitRequested)
        assert requested.wait_kind == "signal" and requested.key == "stock"
        assert before + 3599 < requested.deadline < time.time() + 3601
        [row] = await rt.store.waits(run_id)
        assert (row.id, row.status, row.call_id) == (
            requested.wait_id,
            "pending",
            requested.call_id,
        )


def test_a_wait_must_say_what_it_waits_for():
    with pytest.raises(SpecError, match="exactly one"):
        Wait()
    with pytest.raises(SpecError, match="exactly one"):
        Wait(signal="a", timer=1)
    with pytest.raises(SpecError, match="JSON"):
        Wait(signal="a", on_deadline=object())


# -- approvals are waits too ------------------------------------------------------------

PAID: list[float] = []


@tool(effect="irreversible")
def pay(amount: float) -> dict:
    """Send money."""
    PAID.append(amount)
    return {"paid": amount}


NEEDS_APPROVAL = {
    "name": "pay-policy",
    "rules": [{"name": "payments", "tools": ["pay"], "effect": "require_approval"}],
}


async def test_an_approval_is_a_wait_settled_through_the_same_wake_path(db_url):
    PAID.clear()
    a = Agent(
        name="payer",
        model=scripted(call("pay", amount=5), {"content": "paid"}),
        tools=[pay],
        policy=NEEDS_APPROVAL,
    )
    async with Runtime(db_url) as rt:
        rt.register(a)
        run_id = await rt.submit(a, "pay")
        await Worker(rt, poll_interval=0.01).serve(exit_when_idle=True)
        assert (await rt.get_run(run_id)).status == "waiting_approval"
        [approval] = await rt.approvals()
        [wait] = await rt.store.waits(run_id)
        assert (wait.id, wait.kind, wait.status) == (approval.id, "approval", "pending")
        await rt.approve(approval.id, by="ana")
        assert (await rt.store.get_wait(wait.id)).status == "settled"
        assert (await rt.get_run(run_id)).status == "queued"  # woken by the settle
        await drain(rt, until=run_id)
        assert (await rt.get_run(run_id)).status == "succeeded"
    assert PAID == [5]


async def test_a_run_waiting_on_an_approval_and_a_signal_wakes_when_both_settle(db_url):
    PAID.clear()
    a = Agent(
        name="both",
        model=scripted(
            {
                "tool_calls": [
                    {"name": "pay", "arguments": {"amount": 7}},
                    {"name": "ask_warehouse", "arguments": {"order": "B2"}},
                ]
            },
            {"content": "done"},
        ),
        tools=[pay, ask_warehouse],
        policy=NEEDS_APPROVAL,
    )
    async with Runtime(db_url) as rt:
        rt.register(a)
        run_id = await rt.submit(a, "pay and ask")
        await parked(rt, run_id)  # `waiting`: not only people are awaited
        [approval] = await rt.approvals()
        await rt.approve(approval.id, by="ana")
        assert (await rt.get_run(run_id)).status == "waiting"  # the signal is still pending
        await rt.signal(run_id, "stock", {"in_stock": 0})
        assert (await rt.get_run(run_id)).status == "queued"
        await drain(rt, until=run_id)
        assert (await rt.get_run(run_id)).status == "succeeded"
        assert len(of(await rt.events(run_id), WaitResolved)) == 1
    assert PAID == [7]


# -- what the edges show --------------------------------------------------------------


@tool(effect="read", idempotent=True, sensitive=("pin",))
def await_pin(user: str) -> Wait:
    """Wait for the user's PIN (sensitive) to arrive as the `pin` signal."""
    return Wait(signal="pin")


async def test_a_waiting_call_shows_what_it_waits_for_and_secrets_stay_masked(sqlite_path):
    from bosun.journal.calls import calls
    from bosun.observe.shown import shown

    async with Runtime(sqlite_path) as rt:
        a = agent("pin", await_pin, first=call("await_pin", user="ana"))
        rt.register(a)
        run_id = await rt.submit(a, "log in")
        await parked(rt, run_id)
        [waiting] = calls(await rt.events(run_id))
        assert waiting.outcome == "waiting" and waiting.waiting_for == "signal pin"
        await rt.signal(run_id, "pin", {"pin": "4921", "ok": True})
        await drain(rt, until=run_id)
        run = await rt.get_run(run_id)
        seen = shown(run, await rt.events(run_id))
        text = repr(seen)
    assert "4921" not in text  # the payload's sensitive field, masked at every edge
    assert "'ok': True" in text


def test_a_database_from_before_waits_gets_wait_rows_for_its_pending_approvals(tmp_path):
    import sqlite3

    from bosun.store.sqlite import migrations

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrations.migrate_database(conn, "old.db")
    conn.execute("DROP TABLE waits")
    conn.execute("DROP TABLE signals")
    conn.execute("DROP TABLE bosun_migrations")  # layout 7 predates it
    conn.execute(
        "INSERT INTO approvals(id, run_id, call_id, tenant, agent, tool, arguments, role, rule,"
        " reason, status, created_at, on_expiry) VALUES ('apr_1', 'run_1', 'c1', 'default',"
        " 'a', 'pay', '{}', 'approver', 'r', 'why', 'pending', 1.0, 'deny')"
    )
    conn.execute("PRAGMA user_version=7")
    migrations.migrate_database(conn, "old.db")
    rows = conn.execute("SELECT id, kind, key, status FROM waits").fetchall()
    assert rows == [("apr_1", "approval", "apr_1", "pending")]
    assert conn.execute("PRAGMA user_version").fetchone()[0] == migrations.LATEST


async def test_a_child_ending_after_its_parent_parked_wakes_the_parent(db_url):
    async with Runtime(db_url) as rt:
        child = agent("gated", ask_warehouse, first=call("ask_warehouse", order="C"))
        rt.register(child)
        child_id = await rt.submit(child, "compute")
        parent = agent("waiter", await_child, first=call("await_child", run_id=child_id))
        rt.register(parent)
        parent_id = await rt.submit(parent, "delegate")
        await Worker(rt, poll_interval=0.01).serve(exit_when_idle=True)
        assert (await rt.get_run(parent_id)).status == "waiting"  # the child is waiting too
        await rt.signal(child_id, "stock", {"in_stock": 1})
        await drain(rt, until=parent_id)
        [resolved] = of(await rt.events(parent_id), WaitResolved)
        assert resolved.result["run_id"] == child_id
        assert resolved.result["status"] == "succeeded"


async def test_two_signals_racing_to_one_wait_settle_it_once_and_keep_the_other(db_url):
    async with Runtime(db_url) as rt, Runtime(db_url) as other:
        a = agent("two", ask_warehouse, first=call("ask_warehouse", order="A1"))
        rt.register(a)
        run_id = await rt.submit(a, "go")
        await parked(rt, run_id)
        got = await asyncio.gather(
            rt.signal(run_id, "stock", {"n": 1}), other.signal(run_id, "stock", {"n": 2})
        )
        assert sorted(g is None for g in got) == [False, True]  # one delivered, one kept
        await drain(rt, until=run_id)
        assert len(of(await rt.events(run_id), WaitResolved)) == 1


@pytest.mark.parametrize(
    "scope", ["agent:killable", "tenant:default", "global", "run:PARENT", "run:SELF"]
)
async def test_a_kill_switch_ends_a_parked_run_now_not_when_its_wait_arrives(db_url, scope):
    """A run parked on a signal that may never come is still covered by a kill switch: the
    next worker poll queues it and its loop records the kill; its wait is cancelled. A
    switch on an ancestor (`run:ID`) reaches a parked child the same way."""
    async with Runtime(db_url) as rt:
        parent = agent("parent", ask_warehouse, first=call("ask_warehouse", order="P"))
        a = agent("killable", ask_warehouse, first=call("ask_warehouse", order="A1"))
        rt.register(parent)
        rt.register(a)
        parent_id = await rt.submit(parent, "go")
        run_id = await rt.submit(a, "go", parent=parent_id)
        await parked(rt, run_id)
        scope = scope.replace("PARENT", parent_id).replace("SELF", run_id)
        await rt.kill(scope, reason="incident 42", by="ops")
        await drain(rt, until=run_id)
        run = await rt.get_run(run_id)
        [wait] = await rt.store.waits(run_id)
    assert run.status == "killed" and "incident 42" in run.reason
    assert wait.status == "cancelled"


async def test_a_tool_kill_switch_leaves_parked_runs_parked(db_url):
    """A `tool:` switch stops that tool's calls, not whole runs: a run parked on another
    tool stays parked, and goes on when its signal arrives."""
    async with Runtime(db_url) as rt:
        a = agent("tooled", ask_warehouse, first=call("ask_warehouse", order="A1"))
        rt.register(a)
        run_id = await rt.submit(a, "go")
        await parked(rt, run_id)
        await rt.kill("tool:issue_refund", reason="refunds paused", by="ops")
        assert await rt.wake_killed() == 0
        assert (await rt.get_run(run_id)).status == "waiting"
        await rt.signal(run_id, "stock", {"in_stock": 3})
        await drain(rt, until=run_id)
        assert (await rt.get_run(run_id)).status == "succeeded"


@pytest.mark.parametrize("end", ["kill", "cancel"])
async def test_a_run_that_ends_while_waiting_for_approval_leaves_nothing_to_decide(db_url, end):
    """The inbox never offers a decision that can no longer matter: when a run waiting for
    approval is killed or cancelled, its approval is closed as `cancelled`, and approving
    it is refused."""
    from bosun import ApprovalConflict

    PAID.clear()
    a = Agent(
        name="payer",
        model=scripted(call("pay", amount=5), {"content": "paid"}),
        tools=[pay],
        policy=NEEDS_APPROVAL,
    )
    async with Runtime(db_url) as rt:
        rt.register(a)
        run_id = await rt.submit(a, "pay")
        await Worker(rt, poll_interval=0.01).serve(exit_when_idle=True)
        [approval] = await rt.approvals()
        if end == "kill":
            await rt.kill("agent:payer", reason="incident", by="ops")
        else:
            await rt.cancel(run_id)
        await drain(rt, until=run_id)
        assert (await rt.get_run(run_id)).status == ("killed" if end == "kill" else "cancelled")
        assert await rt.approvals() == []
        closed = await rt.store.get_approval(approval.id)
        assert closed.status == "cancelled" and closed.decided_by is None
        with pytest.raises(ApprovalConflict, match="cancelled"):
            await rt.approve(approval.id, by="ana")
    assert PAID == []
