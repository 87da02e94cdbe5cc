"""SQLite: a running run's row is written only when its status changes or at a catch-up, yet
every read of its totals (steps, tool calls, tokens, cost) is exact, from any connection."""

from __future__ import annotations

import asyncio
import sqlite3
import time

from bosun import Agent, Runtime, tool
from bosun.engine.state import rebuild
from bosun.journal.events import ModelResponded, RunStarted, ToolStarted
from bosun.store import RUNNING, RunRecord, RunSummary
from bosun.store.sqlite import CATCH_UP_DELAY, SqliteStore

GATE: asyncio.Event | None = None


@tool(effect="read", idempotent=True)
async def lookup(order: str) -> dict:
    """Look an order up."""
    return {"order": order, "status": "shipped"}


@tool(effect="read", idempotent=True)
async def wait_here(order: str) -> str:
    """Blocks until the test lets it go: the run is mid-step, its row not caught up."""
    assert GATE is not None
    await GATE.wait()
    return "ok"


def agent() -> Agent:
    turns = [
        {"tool_calls": [{"name": "lookup", "arguments": {"order": "1"}}]},
        {"tool_calls": [{"name": "lookup", "arguments": {"order": "2"}}]},
        {"tool_calls": [{"name": "wait_here", "arguments": {"order": "3"}}]},
        {"content": "done"},
    ]
    return Agent(
        name="totals",
        model={
            "provider": "scripted",
            "turns": turns,
            "pricing": {"input_per_million": 1000.0, "output_per_million": 2000.0},
        },
        tools=[lookup, wait_here],
    )


def row_totals(path: str, run_id: str) -> tuple:
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT steps, tool_calls, input_tokens, output_tokens, cost FROM runs WHERE id=?",
            (run_id,),
        ).fetchone()


async def run_until_mid_step(rt: Runtime, other: SqliteStore) -> tuple[asyncio.Task, str]:
    """Start the run; return once its journal shows the third call started (it then waits)."""
    task = asyncio.create_task(rt.run(agent(), "where are my orders?", tags={"t": "1"}))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        runs = await other.list_runs()
        if runs and any(e.kind == "tool_started" and e.tool == "wait_here"
                        for _, e in await other.events(runs[0].id)):  # fmt: skip
            return task, runs[0].id
        await asyncio.sleep(0.01)
    raise AssertionError("the run never reached its third call")


async def test_reads_from_another_connection_are_exact_while_the_row_waits(tmp_path, monkeypatch):
    global GATE
    GATE = asyncio.Event()
    monkeypatch.setattr(
        "bosun.store.sqlite.batch.CATCH_UP_DELAY", 3600.0
    )  # no catch-up in this test
    path = str(tmp_path / "t.db")
    async with Runtime(path) as rt:
        other = SqliteStore(path)  # another process would open its own connection like this
        await other.open()
        try:
            task, run_id = await run_until_mid_step(rt, other)
            assert row_totals(path, run_id)[:2] == (0, 0)  # the row itself has not been written
            truth = rebuild(run_id, await other.events(run_id))  # what the journal says
            seen = await other.get_run(run_id)
            assert (seen.status, seen.steps, seen.tool_calls) == (RUNNING, 3, 3)
            assert (seen.input_tokens, seen.output_tokens) == (
                truth.input_tokens,
                truth.output_tokens,
            )
            assert seen.input_tokens > 0 and seen.cost > 0
            assert abs(seen.cost - truth.cost) < 1e-9
            assert abs(await other.spend_since(0.0, agent="totals") - truth.cost) < 1e-9
            listed = await other.list_runs(tag=("t", "1"))
            assert [(r.steps, r.tool_calls) for r in listed] == [(3, 3)]
        finally:
            GATE.set()
            result = await task
            await other.close()
    assert result.status == "succeeded"
    assert row_totals(path, result.run_id)[:2] == (4, 3)  # written with the finishing commit


async def test_a_running_runs_row_catches_up_within_the_delay(tmp_path):
    global GATE
    GATE = asyncio.Event()
    path = str(tmp_path / "t.db")
    async with Runtime(path) as rt:
        other = SqliteStore(path)
        await other.open()
        try:
            task, run_id = await run_until_mid_step(rt, other)
            deadline = time.monotonic() + CATCH_UP_DELAY + 10  # a slow machine is only later
            while row_totals(path, run_id)[0] != 3 and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            truth = rebuild(run_id, await other.events(run_id))
            steps, calls, tokens_in, tokens_out, cost = row_totals(path, run_id)
            assert (steps, calls, tokens_in, tokens_out) == (
                3, 3, truth.input_tokens, truth.output_tokens,
            )  # fmt: skip
            assert abs(cost - truth.cost) < 1e-9
            assert (await other.get_run(run_id)).status == RUNNING
        finally:
            GATE.set()
            await task
            await other.close()


async def test_a_late_write_from_a_worker_that_lost_its_lease_never_rolls_the_row_back(tmp_path):
    path = str(tmp_path / "t.db")
    old = SqliteStore(path)
    await old.open()
    run = RunRecord(
        id="r1", agent="a", agent_version="a-v1", input="hi", spec={"name": "a"},
        status=RUNNING, lease_owner="w1", lease_expires_at=time.time() + 60,
    )  # fmt: skip
    await old.create_run(run, [RunStarted(ts=1.0, agent="a", agent_version="a-v1", input="hi")])

    def answered(step: int) -> ModelResponded:
        return ModelResponded(ts=2.0, step=step, model="m", content=None, tool_calls=1,
                              input_tokens=10, output_tokens=1, cost=0.5, latency_ms=1.0)  # fmt: skip

    def started(call: str) -> ToolStarted:
        return ToolStarted(ts=2.0, call_id=call, tool="t", attempt=1, idempotency_key=call)

    def totals(steps: int) -> RunSummary:
        return RunSummary(RUNNING, steps, steps, 10 * steps, steps, 0.5 * steps)

    await old.append("r1", [answered(0), started("c0")], first_seq=2, owner="w1",
                     summary=totals(1))  # fmt: skip
    assert old._behind  # the row waits in w1's memory

    new = SqliteStore(path)  # w1's lease expired; w2 goes on
    await new.open()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE runs SET lease_owner='w2' WHERE id='r1'")
    await new.append("r1", [answered(1), started("c1")], first_seq=4, owner="w2",
                     summary=totals(2))  # fmt: skip
    await new.close()  # its catch-up writes the row as of seq 5
    assert row_totals(path, "r1") == (2, 2, 20, 2, 1.0)

    await old.close()  # w1's catch-up comes late, with the totals as of seq 3
    assert row_totals(path, "r1") == (2, 2, 20, 2, 1.0)
    again = SqliteStore(path)
    await again.open()
    seen = await again.get_run("r1")
    assert (seen.steps, seen.tool_calls, seen.cost, seen.last_seq) == (2, 2, 1.0, 5)
    await again.close()
