"""A person settles a run parked as needs_attention; the interrupted call never re-runs."""

from __future__ import annotations

import pytest

from bosun import Agent, Runtime, Worker, tool
from bosun.errors import BosunError
from bosun.journal.events import AttentionResolved, ToolFailed, ToolFinished


class ProcessDied(BaseException):
    """Stands for the process dying inside the tool: the engine does not catch it."""


CHARGES: list[int] = []


@tool(effect="irreversible")
def charge(amount: int) -> dict:
    """Charge the customer (dies the first time, after the charge went through)."""
    CHARGES.append(amount)
    if len(CHARGES) == 1:
        raise ProcessDied
    return {"charged": amount}


AGENT = Agent(
    name="charger",
    model={
        "provider": "scripted",
        "turns": [
            {"tool_calls": [{"name": "charge", "arguments": {"amount": 5}}]},
            {"content": "done"},
        ],
    },
    tools=[charge],
)


@pytest.fixture(autouse=True)
def clear():
    CHARGES.clear()


async def park(db: str) -> str:
    async with Runtime(db) as rt:
        with pytest.raises(ProcessDied):
            await rt.run(AGENT, "charge 5")
        run_id = (await rt.store.list_runs(limit=1))[0].id
    async with Runtime(db, owner="w2") as rt:
        result = await rt.resume(run_id)
    assert result.status == "needs_attention" and CHARGES == [5]
    return run_id


async def test_resolving_as_done_records_the_result_and_the_run_finishes(sqlite_path):
    run_id = await park(sqlite_path)
    async with Runtime(sqlite_path, owner="ops-console") as rt:
        await rt.resolve(run_id, by="ops", result={"charged": 5, "checked": "in the ledger"})
        assert (await rt.get_run(run_id)).status == "queued"
        await Worker(rt, poll_interval=0.01).serve(exit_when_idle=True)
        result = await rt.result(run_id)
        events = await rt.events(run_id)
        audit = [r.entry.action for r in await rt.store.audit_records()]
    assert result.status == "succeeded" and CHARGES == [5]  # never charged twice
    resolved = next(e for _, e in events if isinstance(e, AttentionResolved))
    assert (resolved.outcome, resolved.by) == ("done", "ops")
    finished = next(e for _, e in events if isinstance(e, ToolFinished))
    assert finished.result == {"charged": 5, "checked": "in the ledger"}
    assert "attention_resolved" in audit


async def test_resolving_as_not_done_tells_the_model(sqlite_path):
    run_id = await park(sqlite_path)
    async with Runtime(sqlite_path) as rt:
        await rt.resolve(run_id, by="ops", failed="no charge in the ledger")
        await Worker(rt, poll_interval=0.01).serve(exit_when_idle=True)
        events = await rt.events(run_id)
    failed = next(e for _, e in events if isinstance(e, ToolFailed))
    assert failed.error_type == "not_executed" and "no charge in the ledger" in failed.message
    assert CHARGES == [5]


async def test_only_parked_runs_can_be_resolved(sqlite_path):
    agent = Agent(name="ok", model={"provider": "scripted", "turns": [{"content": "hi"}]})
    async with Runtime(sqlite_path) as rt:
        done = await rt.run(agent, "x")
        with pytest.raises(BosunError, match="not needs_attention"):
            await rt.resolve(done.run_id, by="ops", result=1)
