"""Circuit breakers of tools: only the tool's own failures count, one agent's misuse never
blocks another, and the state is shared by every worker on the database.

The probe: one run passing bad arguments five times opened the breaker, and another
agent's valid calls then failed `circuit_open`.
"""

from __future__ import annotations

import asyncio

from bosun import Agent, Limits, Runtime, tool
from bosun.journal.events import ToolFailed, ToolFinished

CALLS: list[str] = []
DOWN = {"value": True}


@tool(effect="read", idempotent=True)
def lookup_order(order_id: str) -> dict:
    """Look an order up; unknown ids are the caller's mistake."""
    CALLS.append(order_id)
    if not order_id.isdigit():
        raise ValueError(f"no order {order_id!r}: order ids are digits")
    return {"order": order_id, "status": "shipped"}


@tool(effect="write")
def push_crm(note: str) -> str:
    """Write to a CRM that may be down."""
    CALLS.append(note)
    if DOWN["value"]:
        raise ConnectionError("503 from the CRM")
    return "saved"


def scripted(*turns: dict) -> dict:
    return {"provider": "scripted", "turns": list(turns)}


def call(name: str, **arguments) -> dict:
    return {"tool_calls": [{"name": name, "arguments": arguments}]}


def agent(name: str, *turns: dict) -> Agent:
    return Agent(
        name=name,
        model=scripted(*turns, {"content": "done"}),
        tools=[lookup_order, push_crm],
        limits=Limits(max_repeats=None),
    )


def errors(events) -> list[str]:
    return [e.error_type for _, e in events if isinstance(e, ToolFailed)]


async def test_bad_arguments_never_open_the_breaker(db_url):
    CALLS.clear()
    clumsy = agent("clumsy", *[call("lookup_order", order_id=f"x{i}") for i in range(6)],
                   call("lookup_order", order_id="1234"))  # fmt: skip
    careful = agent("careful", call("lookup_order", order_id="42"))
    async with Runtime(db_url) as rt:
        first = await rt.run(clumsy, "look up my orders")
        second = await rt.run(careful, "where is order 42?")
        events = await rt.events(first.run_id)
        assert await rt.store.breakers() == []
    assert errors(events) == ["ValueError"] * 6  # each told to the model, none circuit_open
    assert [e.result["order"] for _, e in events if isinstance(e, ToolFinished)] == ["1234"]
    assert second.status == "succeeded" and "42" in CALLS


async def test_one_agents_failing_tool_does_not_block_another_agent(db_url):
    CALLS.clear()
    DOWN["value"] = True
    noisy = agent("noisy", *[call("push_crm", note=f"n{i}") for i in range(7)])
    other = agent("other", call("push_crm", note="hello"))
    async with Runtime(db_url) as rt:
        first = await rt.run(noisy, "sync")
        DOWN["value"] = False
        second = await rt.run(other, "sync")
        events = await rt.events(first.run_id)
    assert errors(events) == ["ConnectionError"] * 5 + ["circuit_open"] * 2
    assert second.status == "succeeded" and CALLS[-1] == "hello"


async def test_a_breaker_opened_by_one_worker_holds_in_another_and_one_probe_closes_it(db_url):
    CALLS.clear()
    DOWN["value"] = True
    failing = agent("crm", *[call("push_crm", note=f"n{i}") for i in range(5)])
    later = agent("crm", call("push_crm", note="later"))
    async with Runtime(db_url, owner="worker-1") as one, Runtime(db_url, owner="worker-2") as two:
        await one.run(failing, "sync")
        [breaker] = await one.store.breakers()
        assert breaker.key == "tool:default:crm:push_crm" and breaker.opened_at is not None
        blocked = await two.run(later, "sync")  # another process: it never calls the CRM
        assert errors(await two.events(blocked.run_id)) == ["circuit_open"]
        assert CALLS.count("later") == 0
        DOWN["value"] = False
        two.governor.breakers.reset_after = 0.05
        await asyncio.sleep(0.1)  # longer than reset_after: one probe may go
        probe = await two.run(later, "sync again")
        assert errors(await two.events(probe.run_id)) == []
        assert await one.store.breakers() == []  # closed for every worker
    assert CALLS.count("later") == 1
