"""Sync tools run on the runtime's own, deliberately sized thread pool. A call waiting for a
thread has not started: its start is journaled, the kill switches are checked and its
timeout clock starts only when its body begins; a timed-out effect whose outcome is
unknown is never reported as failed."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from bosun import Agent, Runtime, tool
from bosun.journal.events import RunNeedsAttention, ToolFailed, ToolFinished, ToolStarted

HOLD = threading.Event()
HOLDING = threading.Event()
RAN: list[str] = []


@tool(effect="write", idempotent=True, timeout=30)
def hold(tag: str) -> str:
    """Occupies a thread until the test lets go."""
    HOLDING.set()
    HOLD.wait(30)
    RAN.append(f"hold:{tag}")
    return tag


@tool(effect="irreversible", timeout=0.3)
def quick_pay(amount: float) -> dict:
    """Returns at once (its timeout is short)."""
    RAN.append(f"pay:{amount}")
    return {"paid": amount}


@tool(effect="irreversible", timeout=0.1)
def stuck_pay(amount: float) -> dict:
    """A gateway that answers after the timeout: the payment may well have gone through."""
    HOLD.wait(30)
    RAN.append(f"stuck:{amount}")
    return {"paid": amount}


@tool(effect="read", idempotent=True, timeout=0.1)
def stuck_read(ref: str) -> dict:
    """A lookup that answers too late."""
    HOLD.wait(30)
    return {"ref": ref}


def one_call(name: str, tool_name: str, **arguments) -> Agent:
    return Agent(
        name=name,
        model={"provider": "scripted", "turns": [
            {"tool_calls": [{"name": tool_name, "arguments": arguments}]},
            {"content": "done"},
        ]},
        tools=[hold, quick_pay, stuck_pay, stuck_read],
    )  # fmt: skip


@pytest.fixture(autouse=True)
def reset():
    HOLD.clear()
    HOLDING.clear()
    RAN.clear()
    yield
    HOLD.set()  # never leave a thread blocked


async def until(check, what: str) -> None:
    deadline = time.monotonic() + 20
    while not check():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        await asyncio.sleep(0.01)


async def occupy(rt: Runtime) -> asyncio.Task:
    """Start a run whose sync tool holds the only thread."""
    task = asyncio.create_task(rt.run(one_call("holder", "hold", tag="a"), "hold"))
    await until(HOLDING.is_set, "the holder to start")
    return task


async def test_a_call_waiting_for_a_thread_is_not_started_and_its_timeout_not_running(
    sqlite_path,
):
    async with Runtime(sqlite_path, tool_threads=1) as rt:
        holder = await occupy(rt)
        payer = asyncio.create_task(rt.run(one_call("payer", "quick_pay", amount=5), "pay"))
        await until(lambda: rt.tool_pool.waiting == 1, "the payment to wait for a thread")
        [run] = [r for r in await rt.store.list_runs() if r.agent == "payer"]
        assert not [e for _, e in await rt.events(run.id) if isinstance(e, ToolStarted)]
        await asyncio.sleep(0.5)  # longer than quick_pay's 0.3 s timeout, all of it queued
        HOLD.set()
        paid, held = await payer, await holder
        events = await rt.events(paid.run_id)
    assert held.status == "succeeded"
    assert paid.status == "succeeded", paid.reason
    assert [e.result for _, e in events if isinstance(e, ToolFinished)] == [{"paid": 5.0}]
    assert RAN == ["hold:a", "pay:5.0"]


async def test_a_kill_switch_set_while_a_call_waits_for_a_thread_stops_it_before_it_runs(
    sqlite_path,
):
    async with Runtime(sqlite_path, tool_threads=1) as rt:
        holder = await occupy(rt)
        payer = asyncio.create_task(rt.run(one_call("payer", "quick_pay", amount=7), "pay"))
        await until(lambda: rt.tool_pool.waiting == 1, "the payment to wait for a thread")
        await rt.kill("global", reason="incident 42", by="ops")
        HOLD.set()
        paid, held = await payer, await holder
        events = await rt.events(paid.run_id)
    assert paid.status == "killed" and held.status == "killed"
    assert "pay:7.0" not in RAN  # the payment body never began
    [failed] = [e for _, e in events if isinstance(e, ToolFailed)]
    assert failed.error_type == "killed"


async def test_a_timed_out_irreversible_call_parks_instead_of_failing(sqlite_path):
    async with Runtime(sqlite_path) as rt:
        result = await rt.run(one_call("payer", "stuck_pay", amount=9), "pay")
        events = await rt.events(result.run_id)
    assert result.status == "needs_attention"
    assert "timed out after 0.1s" in result.reason and "may still take effect" in result.reason
    [parked] = [e for _, e in events if isinstance(e, RunNeedsAttention)]
    assert parked.call_id == "call_0_0"
    assert not [e for _, e in events if isinstance(e, ToolFailed)]  # never "it failed"


async def test_a_timed_out_read_is_reported_to_the_model_as_a_timeout(sqlite_path):
    async with Runtime(sqlite_path) as rt:
        result = await rt.run(one_call("reader", "stuck_read", ref="A1"), "look")
        events = await rt.events(result.run_id)
    assert result.status == "succeeded"
    [failed] = [e for _, e in events if isinstance(e, ToolFailed)]
    assert failed.error_type == "timeout"


def test_the_pool_size_must_be_positive(sqlite_path):
    with pytest.raises(ValueError, match="tool_threads"):
        Runtime(sqlite_path, tool_threads=0)
