"""Agents as tools, on both stores, with the scripted model: a parent calls a child agent as
a tool, parks (holding no worker) until the child run ends, and gets its answer, or a
structured error it can recover from; budgets hold over the tree; the parent's policies
govern the call and the child's own governance what happens inside it."""

from __future__ import annotations

import asyncio

import pytest

from bosun import Agent, Limits, Runtime, SpecError, Worker, tool
from bosun.journal.events import (
    RunStarted,
    RunWaiting,
    ToolFailed,
    ToolFinished,
    ToolStarted,
    WaitRequested,
)
from bosun.spec.agent_tool import agent_tool

LOOKUPS: list[str] = []


@tool(effect="read", idempotent=True)
def lookup(order: str) -> dict:
    """Look an order up."""
    LOOKUPS.append(order)
    return {"order": order, "status": "delivered"}


@tool(effect="irreversible")
def refund(order: str, amount: float) -> dict:
    """Refund an order. Cannot be undone."""
    return {"refunded": amount, "order": order}


@pytest.fixture(autouse=True)
def clear():
    LOOKUPS.clear()


def scripted(*turns: dict) -> dict:
    return {"provider": "scripted", "turns": list(turns)}


def calls(*pairs: tuple[str, dict]) -> dict:
    return {"tool_calls": [{"name": n, "arguments": a} for n, a in pairs]}


def of(events, kind, **match):
    return [
        e
        for _, e in events
        if isinstance(e, kind) and all(getattr(e, k) == v for k, v in match.items())
    ]


async def drain(rt: Runtime) -> None:
    """Drive every run until nothing is left to do (parents wake when children end)."""
    await Worker(rt, poll_interval=0.01).serve(exit_when_idle=True)


def researcher(*turns: dict, **options) -> Agent:
    return Agent(
        name="researcher",
        instructions="Find facts about orders.",
        model=scripted(*turns),
        tools=[lookup],
        **options,
    )


async def children_of(rt: Runtime, parent_id: str):
    return await rt.store.list_runs(parent_id=parent_id, limit=100)


async def test_a_parent_calls_a_child_agent_and_gets_its_answer(db_url):
    child = researcher(calls(("lookup", {"order": "1234"})), {"content": "1234 was delivered"})
    parent = Agent(
        name="lead",
        model=scripted(
            calls(("researcher", {"input": "Where is order 1234?"})),
            {"content": "Your order was delivered."},
        ),
        tools=[child],
    )
    async with Runtime(db_url) as rt:
        parent_id = await rt.submit(parent, "Where is my order 1234?")
        await drain(rt)
        result = await rt.result(parent_id)
        events = await rt.events(parent_id)
        [kid] = await children_of(rt, parent_id)
        child_events = await rt.events(kid.id)

    assert result.status == "succeeded" and result.output == "Your order was delivered."
    # The child is its own run in the parent's tree, with its own journal.
    assert (kid.parent_id, kid.root_id, kid.agent, kid.status) == (
        parent_id,
        parent_id,
        "researcher",
        "succeeded",
    )
    assert kid.idempotency_key == f"{parent_id}:call_0_0"
    [started] = of(child_events, RunStarted)
    assert started.input == "Where is order 1234?"  # the call's input, nothing more
    assert LOOKUPS == ["1234"]
    # The parent parked on the child (no worker held), then got its answer.
    assert of(events, WaitRequested)[0].key == kid.id
    assert of(events, RunWaiting)
    [answer] = of(events, ToolFinished, tool="researcher")
    assert answer.result == {"answer": "1234 was delivered", "run_id": kid.id}


async def test_a_failing_child_is_a_structured_error_and_the_parent_goes_on(db_url):
    broken = researcher({"error": "the model endpoint is down"})
    parent = Agent(
        name="lead",
        model=scripted(
            calls(("researcher", {"input": "Where is 1234?"})),
            {"content": "I could not find out; a person will follow up."},
        ),
        tools=[broken],
    )
    async with Runtime(db_url) as rt:
        parent_id = await rt.submit(parent, "Where is my order?")
        await drain(rt)
        result = await rt.result(parent_id)
        events = await rt.events(parent_id)
        [kid] = await children_of(rt, parent_id)

    assert kid.status == "failed"
    assert result.status == "succeeded"
    assert result.output == "I could not find out; a person will follow up."
    [failed] = of(events, ToolFailed, tool="researcher")
    assert failed.error_type == "child_failed"
    assert kid.id in failed.message and "model endpoint is down" in failed.message


async def test_the_child_sees_the_parents_conversation_only_when_declared(db_url):
    child = Agent(name="summariser", model=scripted({"content": "summary"}), tools=[])
    # Each child reserves what it may spend: capped per call, both fit the parent's budget.
    told = agent_tool(child, name="with_history", context="conversation", limits={"max_steps": 5})
    blind = agent_tool(child, name="blind", limits={"max_steps": 5})
    parent = Agent(
        name="lead",
        model=scripted(
            calls(("with_history", {"input": "summarise"}), ("blind", {"input": "summarise"})),
            {"content": "done"},
        ),
        tools=[told, blind],
    )
    async with Runtime(db_url) as rt:
        parent_id = await rt.submit(parent, "My parcel 77 is late")
        await drain(rt)
        kids = {k.idempotency_key: k for k in await children_of(rt, parent_id)}
        inputs = {key: of(await rt.events(k.id), RunStarted)[0].input for key, k in kids.items()}

    assert len(inputs) == 2
    assert inputs[f"{parent_id}:call_0_1"] == "summarise"
    shown = inputs[f"{parent_id}:call_0_0"]
    assert "user: My parcel 77 is late" in shown and shown.endswith("summarise")


async def test_a_declared_input_schema_is_validated_and_passed_as_json(db_url):
    child = Agent(name="pricer", model=scripted({"content": "12.50"}), tools=[])
    schema = {
        "type": "object",
        "properties": {"sku": {"type": "string"}, "qty": {"type": "integer"}},
        "required": ["sku", "qty"],
    }
    parent = Agent(
        name="lead",
        model=scripted(
            calls(("pricer", {"sku": "A1"})),  # qty missing: back to the model, no child
            calls(("pricer", {"sku": "A1", "qty": 2})),
            {"content": "It costs 12.50."},
        ),
        tools=[agent_tool(child, input_schema=schema)],
    )
    async with Runtime(db_url) as rt:
        parent_id = await rt.submit(parent, "price A1 x2")
        await drain(rt)
        events = await rt.events(parent_id)
        [kid] = await children_of(rt, parent_id)
        [started] = of(await rt.events(kid.id), RunStarted)

    assert "qty" in of(events, ToolFailed, call_id="call_0_0")[0].message
    assert started.input == '{"qty":2,"sku":"A1"}'
    assert (await_result := of(events, ToolFinished, tool="pricer")[0].result)["answer"] == "12.50"
    assert await_result["run_id"] == kid.id


async def test_an_approval_inside_the_child_resumes_the_whole_tree(db_url):
    policy = {
        "name": "refunds",
        "rules": [
            {"name": "refunds-need-finance", "tools": ["refund"], "effect": "require_approval"}
        ],
    }
    clerk = Agent(
        name="clerk",
        model=scripted(
            calls(("refund", {"order": "1234", "amount": 20.0})), {"content": "refunded 20"}
        ),
        tools=[refund],
        policy=policy,
    )
    parent = Agent(
        name="lead",
        model=scripted(calls(("clerk", {"input": "refund 1234"})), {"content": "Refund done."}),
        tools=[clerk],
    )
    async with Runtime(db_url) as rt:
        parent_id = await rt.submit(parent, "refund my order")
        await drain(rt)
        [kid] = await children_of(rt, parent_id)
        assert kid.status == "waiting_approval"  # the child's own governance applies inside
        assert (await rt.get_run(parent_id)).status == "waiting"  # and the parent waits on it
        [approval] = await rt.approvals()
        assert approval.run_id == kid.id
        await rt.approve(approval.id, by="finance@example.com")
        await drain(rt)
        result = await rt.result(parent_id)
        kid = await rt.get_run(kid.id)
        events = await rt.events(parent_id)

    assert kid.status == "succeeded"
    assert result.status == "succeeded" and result.output == "Refund done."
    assert of(events, ToolFinished, tool="clerk")[0].result["answer"] == "refunded 20"


async def test_the_parents_policy_governs_the_call_and_a_denied_call_starts_nothing(db_url):
    clerk = Agent(name="clerk", model=scripted({"content": "ok"}), tools=[refund])
    policy = {
        "name": "no-delegated-refunds",
        "rules": [
            {"name": "no-irreversible-helpers", "effects": ["irreversible"], "effect": "deny"}
        ],
    }
    parent = Agent(
        name="lead",
        model=scripted(calls(("clerk", {"input": "refund 1234"})), {"content": "I cannot."}),
        tools=[clerk],
        policy=policy,
    )
    assert parent.tool_map["clerk"].effect == "irreversible"  # the strongest of its tools
    async with Runtime(db_url) as rt:
        parent_id = await rt.submit(parent, "refund")
        await drain(rt)
        result = await rt.result(parent_id)
        events = await rt.events(parent_id)
        kids = await children_of(rt, parent_id)

    assert result.status == "succeeded"
    assert kids == []
    assert of(events, ToolFailed, tool="clerk")[0].error_type == "denied"
    assert not of(events, ToolStarted)


async def test_budgets_hold_over_the_tree(db_url):
    """The child asks for 50 steps; the parent has 4 in all. The child is capped at what
    the parent has left, stops there, and the tree never spends more than the parent's 4."""
    looping = researcher(
        *[calls(("lookup", {"order": str(i)})) for i in range(20)], limits=Limits(max_steps=50)
    )
    parent = Agent(
        name="lead",
        model=scripted(
            calls(("researcher", {"input": "dig"})),
            calls(("researcher", {"input": "dig again"})),
            {"content": "never reached"},
        ),
        tools=[looping],
        limits=Limits(max_steps=4),
    )
    async with Runtime(db_url) as rt:
        parent_id = await rt.submit(parent, "research")
        await drain(rt)
        result = await rt.result(parent_id)
        events = await rt.events(parent_id)
        kids = await children_of(rt, parent_id)
        child_starts = [of(await rt.events(k.id), RunStarted)[0] for k in kids]

    assert result.status == "limit_exceeded"
    [first] = kids
    assert child_starts[0].limits["max_steps"] == 3  # 4, less the parent's first step
    assert first.status == "limit_exceeded" and first.steps == 3
    assert result.steps + sum(k.steps for k in kids) <= 4
    errors = of(events, ToolFailed, tool="researcher")
    assert errors[0].error_type == "child_limit_exceeded"


async def test_a_child_that_cannot_fit_the_parents_budget_is_refused_with_a_clear_error(db_url):
    child = researcher({"content": "ok"})
    parent = Agent(
        name="lead",
        model=scripted(calls(("researcher", {"input": "x"})), {"content": "done"}),
        tools=[child],
        limits=Limits(max_steps=1),
    )
    async with Runtime(db_url) as rt:
        parent_id = await rt.submit(parent, "go")
        await drain(rt)
        events = await rt.events(parent_id)
        kids = await children_of(rt, parent_id)

    assert kids == []
    [refused] = of(events, ToolFailed, tool="researcher")
    assert refused.error_type == "budget_exhausted" and "max_steps" in refused.message


async def test_a_repeated_call_after_a_crash_finds_the_same_child(db_url):
    """A parent whose worker died after the child was created (its wait not yet committed)
    starts the call again on resume: the key `<parent>:<call>` returns the same child."""
    child = researcher({"content": "answer"})
    parent = Agent(
        name="lead",
        model=scripted(calls(("researcher", {"input": "x"})), {"content": "done"}),
        tools=[child],
    )

    class Died(BaseException):
        """The process dies: nothing more is journaled."""

    async with Runtime(db_url) as rt:
        real = rt._spawn_child

        async def spawn_then_die(*args):
            await real(*args)
            raise Died

        rt.register(parent)
        parent_id = await rt.submit(parent, "go")
        [run] = await rt.store.claim(rt.owner, limit=1, lease_seconds=30)
        loop_spawn = rt._spawn_child
        rt._spawn_child = spawn_then_die  # type: ignore[method-assign]
        with pytest.raises(Died):
            await rt.drive(run)
        rt._spawn_child = loop_spawn  # type: ignore[method-assign]
        assert len(await children_of(rt, parent_id)) == 1
        assert not of(await rt.events(parent_id), WaitRequested)  # died before the wait
        await drain(rt)
        result = await rt.result(parent_id)
        kids = await children_of(rt, parent_id)

    assert result.status == "succeeded"
    assert len(kids) == 1 and kids[0].status == "succeeded"


def test_the_effect_of_an_agent_tool_is_never_weaker_than_its_tools():
    clerk = Agent(name="clerk", model=scripted({"content": "ok"}), tools=[lookup, refund])
    assert agent_tool(clerk).effect == "irreversible"
    assert agent_tool(researcher({"content": "x"})).effect == "read"
    assert agent_tool(Agent(name="bare", model="scripted")).effect == "read"
    with pytest.raises(SpecError, match=r"weaker than what the agent can do.*refund"):
        agent_tool(clerk, effect="read")
    with pytest.raises(SpecError, match="`context` must be one of input, conversation"):
        agent_tool(clerk, context="memory")
    with pytest.raises(SpecError, match="in Python pass the agent itself"):
        Agent(name="lead", model="scripted", tools=["agent:clerk"])


async def test_the_parent_version_pins_the_child_and_rebuilds_it_elsewhere(sqlite_path):
    child = researcher({"content": "answer"})
    parent = Agent(name="lead", model="scripted", tools=[child])
    rebuilt = Agent.from_snapshot(parent.snapshot())
    assert rebuilt.version_id == parent.version_id
    assert rebuilt.tool_map["researcher"].source.config["agent"] == child.snapshot()
    changed = researcher({"content": "another answer"})
    assert Agent(name="lead", model="scripted", tools=[changed]).version_id != parent.version_id


async def test_a_child_of_a_cancelled_parent_is_cancelled_too(db_url):
    slow = Agent(
        name="slow",
        model=scripted(calls(("await_go", {})), {"content": "late"}),
        tools=["team_tools.py:await_go"],
    )
    parent = Agent(
        name="lead",
        model=scripted(calls(("slow", {"input": "x"})), {"content": "done"}),
        tools=[slow],
    )
    async with Runtime(db_url) as rt:
        parent_id = await rt.submit(parent, "go")
        await drain(rt)
        [kid] = await children_of(rt, parent_id)
        assert kid.status == "waiting"
        await rt.cancel(parent_id)
        await asyncio.sleep(0)
        await drain(rt)
        assert (await rt.get_run(kid.id)).status == "cancelled"
        assert (await rt.get_run(parent_id)).status == "cancelled"


async def test_runtime_run_drives_the_children_in_this_process(db_url):
    """`Runtime.run` (and `bosun run`) comes back with the tree finished, nested two deep."""
    inner = researcher(calls(("lookup", {"order": "9"})), {"content": "9 is delivered"})
    middle = Agent(
        name="middle",
        model=scripted(calls(("researcher", {"input": "order 9?"})), {"content": "says: 9 ok"}),
        tools=[agent_tool(inner, limits={"max_steps": 5})],
        limits=Limits(max_steps=10),
    )
    top = Agent(
        name="top",
        model=scripted(calls(("middle", {"input": "ask about 9"})), {"content": "9 is fine"}),
        tools=[middle],
    )
    async with Runtime(db_url) as rt:
        result = await rt.run(top, "how is order 9?")
        tree = await rt.store.list_runs(root_id=result.run_id)

    assert result.status == "succeeded" and result.output == "9 is fine"
    assert sorted(r.agent for r in tree) == ["middle", "researcher", "top"]
    assert all(r.status == "succeeded" and r.root_id == result.run_id for r in tree)


async def test_a_parent_rule_asking_approval_for_the_call_starts_the_child_only_once_approved(
    db_url,
):
    clerk = Agent(
        name="clerk", model=scripted({"content": "filed"}), tools=[], limits=Limits(max_steps=3)
    )
    policy = {
        "name": "delegation-needs-a-lead",
        "rules": [
            {"name": "ask-before-delegating", "tools": ["clerk"], "effect": "require_approval"}
        ],
    }
    parent = Agent(
        name="lead",
        model=scripted(calls(("clerk", {"input": "file it"})), {"content": "Filed."}),
        tools=[clerk],
        policy=policy,
    )
    async with Runtime(db_url) as rt:
        parent_id = await rt.submit(parent, "file the claim")
        await drain(rt)
        assert (await rt.get_run(parent_id)).status == "waiting_approval"
        assert await children_of(rt, parent_id) == []  # nothing started before the approval
        [approval] = await rt.approvals()
        assert (approval.run_id, approval.tool) == (parent_id, "clerk")
        await rt.approve(approval.id, by="lead@example.com")
        await drain(rt)
        result = await rt.result(parent_id)
        kids = await children_of(rt, parent_id)

    assert result.status == "succeeded" and result.output == "Filed."
    assert [k.status for k in kids] == ["succeeded"]


async def test_per_call_limits_tighten_only_what_they_set(db_url):
    child = Agent(
        name="worker",
        model=scripted({"content": "ok"}),
        tools=[],
        limits=Limits(max_steps=10, max_tool_calls=500),
    )
    parent = Agent(
        name="lead",
        model=scripted(calls(("worker", {"input": "go"})), {"content": "done"}),
        tools=[agent_tool(child, limits={"max_steps": 2})],
    )
    async with Runtime(db_url) as rt:
        parent_id = await rt.submit(parent, "go")
        await drain(rt)
        [kid] = await children_of(rt, parent_id)
        [started] = of(await rt.events(kid.id), RunStarted)

    assert started.limits["max_steps"] == 2
    assert started.limits["max_tool_calls"] == 500  # the child's own, not a default


async def test_a_kill_switch_on_the_child_agent_is_a_structured_error_for_the_parent(db_url):
    """`bosun kill --scope agent:researcher` halts the child at its next step; the parent's
    model is told (`child_killed`) and the parent goes on."""
    child = Agent(
        name="researcher",
        model=scripted(calls(("await_go", {})), {"content": "late"}),
        tools=["team_tools.py:await_go"],
        limits=Limits(max_steps=5),
    )
    parent = Agent(
        name="lead",
        model=scripted(calls(("researcher", {"input": "x"})), {"content": "Research is off."}),
        tools=[child],
    )
    async with Runtime(db_url) as rt:
        parent_id = await rt.submit(parent, "go")
        await drain(rt)
        [kid] = await children_of(rt, parent_id)
        assert kid.status == "waiting"
        await rt.kill("agent:researcher", reason="researcher misbehaves", by="ops@example.com")
        await rt.signal(kid.id, "go", {})  # it wakes, and halts at its next step
        await drain(rt)
        result = await rt.result(parent_id)
        events = await rt.events(parent_id)
        kid = await rt.get_run(kid.id)

    assert kid.status == "killed"
    assert result.status == "succeeded" and result.output == "Research is off."
    [failed] = of(events, ToolFailed, tool="researcher")
    assert failed.error_type == "child_killed" and "researcher misbehaves" in failed.message
