"""The step loop's behaviour a user relies on: answers, tool errors back to the model, limits."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from bosun import Agent, Limits, Runtime, ToolContext, tool
from bosun.journal.events import LimitReached, ModelResponded, ToolFailed, ToolFinished


def scripted(*turns: dict) -> dict:
    return {"provider": "scripted", "turns": list(turns)}


def call(name: str, **arguments: object) -> dict:
    return {"tool_calls": [{"name": name, "arguments": arguments}]}


@tool(effect="read", idempotent=True)
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool(effect="read", idempotent=True)
async def slow_echo(text: str, seconds: float = 0.0) -> str:
    """Echo after a pause."""
    await asyncio.sleep(seconds)
    return text


# Tools are defined at module level: a run's tools must be importable again by reference (a
# worker resumes runs), so state a test shares with its tools lives here, set by the test.
STATE: dict = {}


@tool(effect="read")
def broken() -> str:
    """Always fails."""
    raise RuntimeError("backend unavailable")


@tool(effect="write", idempotent=True, retry={"max_attempts": 3, "backoff_seconds": 0})
def flaky(ctx: ToolContext) -> str:
    """Fails twice, then works."""
    keys = STATE["keys"]
    keys.append(ctx.idempotency_key)
    if len(keys) < 3:
        raise ConnectionError("try again")
    return "ok"


@tool(effect="read")
async def wait_for_gate() -> str:
    """Blocks until the test opens the gate."""
    await STATE["gate"].wait()
    return "open"


async def _step(n: int) -> int:
    STATE["executed"].append(n)
    STATE["started"].set()
    await STATE["gate"].wait()
    return n


@tool(name="step", effect="read")
async def read_step(n: int) -> int:
    """One step."""
    return await _step(n)


@tool(name="step", effect="write")
async def write_step(n: int) -> int:
    """One step with an effect."""
    return await _step(n)


@tool(effect="read", idempotent=True)
async def count(n: int) -> int:
    """Count."""
    return n


def events_of(events: list, kind: type) -> list:
    return [e for _, e in events if isinstance(e, kind)]


async def test_tool_result_reaches_the_model_and_run_succeeds(sqlite_path):
    agent = Agent(
        name="adder", model=scripted(call("add", a=2, b=3), {"content": "5"}), tools=[add]
    )
    async with Runtime(sqlite_path) as rt:
        result = await rt.run(agent, "2+3?")
        events = await rt.events(result.run_id)
    assert (result.status, result.output, result.steps, result.tool_calls) == (
        "succeeded",
        "5",
        2,
        1,
    )
    assert events_of(events, ToolFinished)[0].result == 5
    assert result.input_tokens > 0 and result.cost > 0


async def test_invalid_arguments_go_back_to_the_model_as_a_tool_error(sqlite_path):
    agent = Agent(
        name="adder",
        model=scripted(
            {"tool_calls": [{"name": "add", "arguments": {"a": "two", "b": 3}}]},
            {"tool_calls": [{"name": "add", "arguments": "{not json"}]},
            {"tool_calls": [{"name": "add", "arguments": {"a": 1, "b": 2, "c": 9}}]},
            {"content": "sorry"},
        ),
        tools=[add],
    )
    async with Runtime(sqlite_path) as rt:
        result = await rt.run(agent, "add")
        events = await rt.events(result.run_id)
    failures = events_of(events, ToolFailed)
    assert [f.error_type for f in failures] == ["invalid_arguments"] * 3
    assert "a: Input should be a valid integer" in failures[0].message
    assert "JSON" in failures[1].message or "json" in failures[1].message.lower()
    assert "c: Extra inputs are not permitted" in failures[2].message
    assert result.status == "succeeded" and result.tool_calls == 0


async def test_unknown_tool_and_tool_exception_are_reported_to_the_model(sqlite_path):
    agent = Agent(
        name="errs",
        model=scripted(call("nope"), call("broken"), {"content": "gave up"}),
        tools=[broken],
    )
    async with Runtime(sqlite_path) as rt:
        result = await rt.run(agent, "x")
        failures = events_of(await rt.events(result.run_id), ToolFailed)
    assert failures[0].error_type == "unknown_tool" and "broken" in failures[0].message
    assert (failures[1].error_type, failures[1].message) == ("RuntimeError", "backend unavailable")
    assert result.status == "succeeded"


async def test_tool_timeout_is_a_tool_error_not_a_hang(sqlite_path):
    fast_timeout = dataclasses.replace(slow_echo, timeout=0.05)
    agent = Agent(
        name="timeouts",
        model=scripted(call("slow_echo", text="hi", seconds=30), {"content": "timed out"}),
        tools=[fast_timeout],
    )
    async with Runtime(sqlite_path) as rt:
        result = await rt.run(agent, "x")
        failures = events_of(await rt.events(result.run_id), ToolFailed)
    assert failures[0].error_type == "timeout"
    assert result.status == "succeeded"


async def test_idempotent_tool_retries_with_the_same_key(sqlite_path):
    keys: list[str] = []
    STATE["keys"] = keys
    agent = Agent(name="flaky", model=scripted(call("flaky"), {"content": "done"}), tools=[flaky])
    async with Runtime(sqlite_path) as rt:
        result = await rt.run(agent, "x")
    assert result.status == "succeeded"
    assert len(keys) == 3 and len(set(keys)) == 1


def test_retries_on_a_non_idempotent_tool_are_refused():
    from bosun.errors import SpecError

    with pytest.raises(SpecError, match="idempotent"):

        @tool(effect="irreversible", retry={"max_attempts": 2})
        def pay(amount: float) -> None: ...


@pytest.mark.parametrize(
    ("limits", "limit_name"),
    [
        (Limits(max_steps=2, max_repeats=None), "max_steps"),
        (Limits(max_tool_calls=3, max_repeats=None), "max_tool_calls"),
        (Limits(max_tokens=50, max_repeats=None), "max_tokens"),
        (Limits(max_cost=0.000001, max_repeats=None), "max_cost"),
        (Limits(max_repeats=3), "max_repeats"),
    ],
)
async def test_limits_stop_the_run_with_a_status_and_reason(sqlite_path, limits, limit_name):
    agent = Agent(
        name="looper",
        model=scripted(*[call("add", a=1, b=1) for _ in range(10)], {"content": "never"}),
        tools=[add],
        limits=limits,
    )
    async with Runtime(sqlite_path) as rt:
        result = await rt.run(agent, "loop")
        events = await rt.events(result.run_id)
        run = await rt.get_run(result.run_id)
    assert result.status == "limit_exceeded"
    assert limit_name in result.reason
    assert events_of(events, LimitReached)[0].limit == limit_name
    assert run.status == "limit_exceeded" and run.reason == result.reason


async def test_per_run_limits_tighten_the_agents(sqlite_path):
    agent = Agent(
        name="looper",
        model=scripted(*[call("add", a=i, b=1) for i in range(10)], {"content": "never"}),
        tools=[add],
    )
    async with Runtime(sqlite_path) as rt:
        result = await rt.run(agent, "loop", limits=Limits(max_steps=3))
    assert result.status == "limit_exceeded" and result.steps == 3


async def test_wall_time_limit(sqlite_path):
    agent = Agent(
        name="slow",
        model=scripted(call("slow_echo", text="a", seconds=0.2), {"content": "late"}),
        tools=[slow_echo],
        limits=Limits(max_wall_seconds=0.1),
    )
    async with Runtime(sqlite_path) as rt:
        result = await rt.run(agent, "x")
    assert result.status == "limit_exceeded" and "max_wall_seconds" in result.reason


async def test_model_failure_ends_the_run_failed_with_reason(sqlite_path):
    agent = Agent(name="oops", model=scripted({"error": "upstream exploded"}))
    async with Runtime(sqlite_path) as rt:
        result = await rt.run(agent, "x")
    assert result.status == "failed" and "upstream exploded" in result.reason


async def test_script_exhausted_is_a_clear_failure(sqlite_path):
    agent = Agent(name="short", model=scripted(call("add", a=1, b=2)), tools=[add])
    async with Runtime(sqlite_path) as rt:
        result = await rt.run(agent, "x")
    assert result.status == "failed" and "add turns" in result.reason


async def test_a_slow_tool_in_one_run_does_not_block_another(sqlite_path):
    gate = STATE["gate"] = asyncio.Event()
    blocked = Agent(
        name="blocked",
        model=scripted(call("wait_for_gate"), {"content": "x"}),
        tools=[wait_for_gate],
    )
    quick = Agent(
        name="quick", model=scripted(call("add", a=1, b=1), {"content": "2"}), tools=[add]
    )
    async with Runtime(sqlite_path) as rt:
        slow_task = asyncio.create_task(rt.run(blocked, "wait"))
        quick_result = await asyncio.wait_for(rt.run(quick, "go"), timeout=30)
        assert quick_result.status == "succeeded"
        assert not slow_task.done()
        gate.set()
        assert (await slow_task).status == "succeeded"


async def test_cancel_stops_a_run_at_its_next_step_boundary(sqlite_path):
    gate = STATE["gate"] = asyncio.Event()
    started = STATE["started"] = asyncio.Event()
    executed: list[int] = []
    STATE["executed"] = executed
    agent = Agent(
        name="long",
        model=scripted(*[call("step", n=i) for i in range(5)], {"content": "done"}),
        tools=[read_step],
    )
    async with Runtime(sqlite_path) as rt:
        task = asyncio.create_task(rt.run(agent, "go"))
        await started.wait()
        run_id = (await rt.store.list_runs(limit=1))[0].id
        assert await rt.cancel(run_id)
        gate.set()
        result = await task
        assert not await rt.cancel(run_id)  # already finished
    assert result.status == "cancelled"
    assert executed == [0]  # the in-flight call finished; nothing new started


async def test_pause_stops_a_run_between_steps_and_unpause_continues_it(sqlite_path):
    gate = STATE["gate"] = asyncio.Event()
    started = STATE["started"] = asyncio.Event()
    executed: list[int] = []
    STATE["executed"] = executed
    agent = Agent(
        name="pausable",
        model=scripted(*[call("step", n=i) for i in range(3)], {"content": "done"}),
        tools=[write_step],
    )
    async with Runtime(sqlite_path) as rt:
        task = asyncio.create_task(rt.run(agent, "go"))
        await started.wait()
        run_id = (await rt.store.list_runs(limit=1))[0].id
        assert await rt.pause(run_id)
        gate.set()
        paused = await task
        assert not await rt.pause(run_id)  # paused already
        record = await rt.get_run(run_id)
        kinds = [e.kind for _, e in await rt.events(run_id)]
        assert await rt.unpause(run_id)
        resumed = await rt.resume(run_id)  # what a worker does with the queued run
    assert (paused.status, record.status, record.lease_owner) == ("paused", "paused", None)
    assert kinds[-2:] == ["tool_finished", "run_paused"]  # the call in flight finished first
    assert executed == [0, 1, 2]  # each effect once, across the pause
    assert (resumed.status, resumed.output) == ("succeeded", "done")


async def test_a_queued_run_paused_before_it_starts_makes_no_model_call(sqlite_path):
    agent = Agent(name="q", model=scripted({"content": "done"}), tools=[add])
    async with Runtime(sqlite_path) as rt:
        run_id = await rt.submit(agent, "go")
        assert await rt.pause(run_id)
        first = await rt.resume(run_id)
        kinds = [e.kind for _, e in await rt.events(run_id)]
        assert await rt.cancel(run_id)  # a paused run can still be ended
        ended = await rt.resume(run_id)
    assert first.status == "paused" and "model_responded" not in kinds
    assert ended.status == "cancelled"


async def test_a_thousand_concurrent_runs_share_one_process(sqlite_path):
    # The sim provider calls the first tool with {"n": turn}; give it a matching tool.
    agent = Agent(
        name="sim", model={"provider": "sim", "latency_ms": 5, "tool_steps": 2}, tools=[count]
    )
    async with Runtime(sqlite_path) as rt:
        results = await asyncio.gather(*(rt.run(agent, f"r{i}") for i in range(1000)))
        runs = await rt.store.list_runs(limit=2000)
    assert {r.status for r in results} == {"succeeded"}
    assert sum(r.steps for r in results) == 3000
    assert len(runs) == 1000


async def test_model_responses_are_recorded_with_usage_and_cost(sqlite_path):
    agent = Agent(
        name="priced",
        model={
            "provider": "scripted",
            "turns": [{"content": "hi", "input_tokens": 1_000_000, "output_tokens": 0}],
            "pricing": {"input_per_million": 3.0, "output_per_million": 15.0},
        },
    )
    async with Runtime(sqlite_path) as rt:
        result = await rt.run(agent, "x")
        responded = events_of(await rt.events(result.run_id), ModelResponded)
    assert responded[0].input_tokens == 1_000_000
    assert responded[0].cost == pytest.approx(3.0)
    assert result.cost == pytest.approx(3.0)
