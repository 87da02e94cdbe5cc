"""Kill switches, rate limits, spend caps, breakers, rollback and the audit chain, through the
runtime as a user drives them (real SQLite; cross-process cases in test_cross_process.py)."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from bosun import Agent, Limits, Runtime, tool
from bosun.errors import BosunError
from bosun.govern import audit
from bosun.journal.events import PolicyDecided, ToolCompensated, ToolFailed

LEDGER: list[tuple[str, float]] = []


def reverse_charge(arguments: dict, result: dict) -> dict:
    LEDGER.append(("reverse", arguments["amount"]))
    return {"reversed": result["charge_id"]}


@tool(effect="irreversible", undo=reverse_charge)
def charge(amount: float) -> dict:
    """Charge the customer."""
    LEDGER.append(("charge", amount))
    return {"charge_id": f"ch_{len(LEDGER)}"}


@tool(effect="write")
def note(text: str) -> str:
    """Write a note (no undo declared)."""
    return "noted"


@tool(effect="read", idempotent=True)
def look(n: int) -> int:
    """Read something."""
    return n


# Tools are module-level (a run's tools must be importable again by reference); state a test
# shares with them lives here.
STATE: dict = {}


@tool(effect="read")
async def wait() -> str:
    """Blocks until released."""
    STATE["entered"].set()
    await STATE["gate"].wait()
    return "done"


@tool(effect="write")
def flaky_api(n: int) -> str:
    """Always down."""
    STATE["calls"].append(n)
    raise ConnectionError("503 from upstream")


def scripted(*turns: dict) -> dict:
    return {"provider": "scripted", "turns": list(turns)}


def call(name: str, **arguments: object) -> dict:
    return {"tool_calls": [{"name": name, "arguments": arguments}]}


def of(events, kind):
    return [e for _, e in events if isinstance(e, kind)]


@pytest.fixture(autouse=True)
def clear_ledger():
    LEDGER.clear()


async def test_global_kill_switch_stops_new_runs_and_is_audited(sqlite_path):
    agent = Agent(
        name="biller", model=scripted(call("charge", amount=5), {"content": "ok"}), tools=[charge]
    )
    async with Runtime(sqlite_path) as rt:
        await rt.kill("global", reason="incident 42", by="alice")
        result = await rt.run(agent, "charge")
        assert (
            result.status == "killed"
            and "incident 42" in result.reason
            and "alice" in result.reason
        )
        assert LEDGER == []
        assert await rt.unkill("global", by="alice")
        assert not await rt.unkill("global", by="alice")
        again = await rt.run(agent, "charge")
        assert again.status == "succeeded" and LEDGER == [("charge", 5)]
        actions = [r.entry.action for r in await rt.store.audit_records()]
    assert actions[0] == "kill_switch_set" and "kill_switch_cleared" in actions
    assert "run_killed" in actions


async def test_tool_kill_switch_halts_a_running_run_at_its_next_step(sqlite_path):
    gate = STATE["gate"] = asyncio.Event()
    entered = STATE["entered"] = asyncio.Event()
    agent = Agent(
        name="two-step",
        model=scripted(call("wait"), call("charge", amount=9), {"content": "never"}),
        tools=[wait, charge],
    )
    async with Runtime(sqlite_path) as rt:
        task = asyncio.create_task(rt.run(agent, "go"))
        await entered.wait()
        await rt.kill("tool:charge", reason="refund bug", by="ops")
        gate.set()
        result = await task
    assert result.status == "killed" and "tool:charge" in result.reason
    assert LEDGER == []


async def test_kill_scope_must_be_well_formed(sqlite_path):
    async with Runtime(sqlite_path) as rt:
        with pytest.raises(BosunError, match="global, tenant:NAME"):
            await rt.kill("everything", reason="x", by="me")
        with pytest.raises(BosunError, match="needs a reason"):
            await rt.kill("global", reason=" ", by="me")


async def test_rate_limit_denies_over_quota_calls_with_a_reason(sqlite_path):
    agent = Agent(
        name="reader",
        model=scripted(*[call("look", n=i) for i in range(4)], {"content": "done"}),
        tools=[look],
        rate_limits=[{"tools": ["look"], "per": "user", "limit": 2, "window_seconds": 3600}],
    )
    async with Runtime(sqlite_path) as rt:
        result = await rt.run(agent, "x", user="bob")
        events = await rt.events(result.run_id)
        other_user = await rt.run(agent, "x", user="carol")
    denied = [f for f in of(events, ToolFailed) if f.error_type == "denied"]
    assert len(denied) == 2 and "rate limit" in denied[0].message
    assert [d.rule for d in of(events, PolicyDecided)].count("rate_limit") == 2
    assert other_user.status == "succeeded"  # counted per user


async def test_daily_spend_cap_per_agent(sqlite_path):
    agent = Agent(
        name="spender",
        model={
            "provider": "scripted",
            "turns": [{"content": "hi", "input_tokens": 1_000_000}],
            "pricing": {"input_per_million": 1.0, "output_per_million": 0.0},
        },
        limits=Limits(max_agent_daily_cost=1.5),
    )
    async with Runtime(sqlite_path) as rt:
        first = await rt.run(agent, "a")
        second = await rt.run(agent, "b")
        third = await rt.run(agent, "c")
    assert first.status == second.status == "succeeded"
    assert third.status == "limit_exceeded" and "max_agent_daily_cost" in third.reason


async def test_circuit_breaker_opens_after_repeated_failures_and_fails_closed(sqlite_path):
    calls: list[int] = []
    STATE["calls"] = calls
    agent = Agent(
        name="breaker",
        model=scripted(*[call("flaky_api", n=i) for i in range(7)], {"content": "gave up"}),
        tools=[flaky_api],
        limits=Limits(max_repeats=None),
    )
    async with Runtime(sqlite_path) as rt:
        result = await rt.run(agent, "x")
        failures = of(await rt.events(result.run_id), ToolFailed)
    assert len(calls) == 5  # the breaker opened after 5 failures
    assert [f.error_type for f in failures[5:]] == ["circuit_open", "circuit_open"]


async def test_model_falls_back_when_the_primary_fails(sqlite_path):
    agent = Agent(
        name="fallback",
        model={
            "provider": "scripted",
            "turns": [{"error": "primary down"}],
            "fallbacks": [{"provider": "sim", "latency_ms": 0, "tool_steps": 0}],
        },
    )
    async with Runtime(sqlite_path) as rt:
        result = await rt.run(agent, "x")
    assert result.status == "succeeded" and result.output.startswith("done after")


async def test_rollback_compensates_in_reverse_and_reports_missing_undo(sqlite_path):
    agent = Agent(
        name="rb",
        model=scripted(
            call("charge", amount=10),
            call("note", text="charged"),
            call("charge", amount=20),
            {"content": "done"},
        ),
        tools=[charge, note],
    )
    async with Runtime(sqlite_path) as rt:
        result = await rt.run(agent, "x")
        report = await rt.rollback(result.run_id, by="risk")
        events = await rt.events(result.run_id)
        again = await rt.rollback(result.run_id, by="risk", last=1)
    assert LEDGER == [("charge", 10), ("charge", 20), ("reverse", 20), ("reverse", 10)]
    assert [c.split()[0] for c in report.compensated] == ["charge", "charge"]
    assert report.missing == [report.missing[0]] and report.missing[0].startswith("note")
    assert [e.result for e in of(events, ToolCompensated)] == [
        {"reversed": "ch_2"},
        {"reversed": "ch_1"},
    ]
    assert again.compensated == []  # nothing is compensated twice


async def test_audit_verify_finds_the_first_tampered_record(sqlite_path):
    async with Runtime(sqlite_path) as rt:
        for i in range(5):
            await rt.kill(f"agent:a{i}", reason=f"r{i}", by="ops")
        assert (await audit.verify(rt.store)).ok
        with sqlite3.connect(sqlite_path) as conn:
            conn.execute("UPDATE audit SET actor='mallory' WHERE seq=3")
        result = await audit.verify(rt.store)
    assert not result.ok and result.first_bad_seq == 3 and "content" in result.problem


async def test_audit_verify_finds_a_deleted_record(sqlite_path):
    async with Runtime(sqlite_path) as rt:
        for i in range(4):
            await rt.kill(f"agent:a{i}", reason="r", by="ops")
        with sqlite3.connect(sqlite_path) as conn:
            conn.execute("DELETE FROM audit WHERE seq=2")
        result = await audit.verify(rt.store)
    assert not result.ok and result.first_bad_seq == 2


async def test_a_run_kill_switch_stops_that_run_and_its_subtree_but_not_its_siblings(sqlite_path):
    agent = Agent(
        name="biller", model=scripted(call("charge", amount=5), {"content": "ok"}), tools=[charge]
    )
    async with Runtime(sqlite_path) as rt:
        root = await rt.submit(agent, "root")
        share = Limits(max_steps=10)  # each child holds 10 of its parent's 50 steps
        child = await rt.submit(agent, "child", parent=root, limits=share)
        grandchild = await rt.submit(agent, "grandchild", parent=child, limits=Limits(max_steps=5))
        sibling = await rt.submit(agent, "sibling", parent=root, limits=share)
        await rt.kill(f"run:{child}", reason="runaway branch", by="ops")
        results = {run_id: await rt.resume(run_id) for run_id in (grandchild, child, sibling)}
        assert results[child].status == "killed" and f"run:{child}" in results[child].reason
        assert results[grandchild].status == "killed"
        assert results[sibling].status == "succeeded"
        assert LEDGER == [("charge", 5)]  # only the sibling charged
        with pytest.raises(BosunError, match="run:ID"):
            await rt.kill("run:", reason="x", by="me")
