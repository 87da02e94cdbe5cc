"""Run-tree budgets a user relies on: a sub-agent can never spend its parent's budget
many times over. A child gets at most what its parent has left and holds it (reserve);
what it does not use goes back when it finishes (settle). On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from bosun import Agent, BudgetExhausted, Limits, Runtime, ToolContext, tool
from bosun.journal.events import LimitReached, RunStarted

# Tools are module level (runs find their tools again by reference); the test sets these.
STATE: dict = {}


def turn(tokens: int, **extra: object) -> dict:
    return {"input_tokens": tokens, "output_tokens": 0, **extra}


def call(name: str, **arguments: object) -> dict:
    return {"tool_calls": [{"name": name, "arguments": arguments}]}


@tool(effect="read")
async def delegate(task: str, ctx: ToolContext) -> str:
    """Hand a task to a helper agent (a child run) and wait for its answer."""
    rt: Runtime = STATE["rt"]
    child = await rt.submit(STATE["helper"], task, parent=ctx.run_id, limits=STATE.get("limits"))
    STATE.setdefault("children", []).append(child)
    result = await rt.resume(child)
    return f"{result.status}: {result.output or result.reason}"


@tool(effect="read", idempotent=True)
def lookup(ref: str) -> str:
    """Look something up."""
    return f"found {ref}"


def agent(name: str, *turns: dict, limits: Limits | None = None) -> Agent:
    return Agent(
        name=name,
        model={"provider": "scripted", "turns": list(turns)},
        tools=[delegate, lookup],
        limits=limits or Limits(),
    )


def helper(*tokens: int) -> Agent:
    """A helper that looks things up, one step per entry, then answers (the last entry)."""
    turns = [turn(t, **call("lookup", ref=str(i))) for i, t in enumerate(tokens[:-1])]
    return agent("helper", *turns, turn(tokens[-1], content="done"))


def planner(max_tokens: int, first: int = 100, last: int = 100) -> Agent:
    """A planner that delegates once, then answers."""
    return agent(
        "planner",
        turn(first, **call("delegate", task="research")),
        turn(last, content="planned"),
        limits=Limits(max_tokens=max_tokens),
    )


@pytest.fixture
async def rt(db_url):
    async with Runtime(db_url) as runtime:
        STATE.clear()
        STATE["rt"] = runtime
        yield runtime
    STATE.clear()


async def test_a_child_is_capped_at_what_its_parent_has_left(rt):
    parent = await rt.submit(
        agent("planner", limits=Limits(max_tokens=1000, max_wall_seconds=60)), "p"
    )
    child = await rt.submit(helper(10), "c", parent=parent, limits=Limits(max_tokens=5000))
    started = (await rt.events(child))[0][1]
    assert isinstance(started, RunStarted)
    assert started.limits["max_tokens"] == 1000  # asked for 5000, the parent has 1000
    assert started.limits["max_wall_seconds"] <= 60  # never past the parent's deadline
    assert started.limits["max_steps"] == 50
    parent_row, child_row = await rt.get_run(parent), await rt.get_run(child)
    assert (parent_row.child_tokens, parent_row.child_steps) == (1000, 50)  # held by the child
    assert child_row.reserved_tokens == 1000
    with pytest.raises(
        BudgetExhausted, match=rf"run {parent} cannot start a child run.*max_tokens"
    ):
        await rt.submit(helper(10), "c2", parent=parent)


async def test_unused_reservation_goes_back_to_the_parent_when_the_child_finishes(rt):
    parent = await rt.submit(agent("planner", limits=Limits(max_tokens=1000, max_steps=20)), "p")
    share = Limits(max_tokens=400, max_steps=5)
    child = await rt.submit(helper(30, 20), "c", parent=parent, limits=share)
    second = await rt.submit(helper(10), "c2", parent=parent, limits=share)
    held = await rt.get_run(parent)
    assert (held.child_tokens, held.child_steps) == (800, 10)
    third = await rt.submit(helper(10), "c3", parent=parent, limits=share)
    assert (await rt.events(third))[0][1].limits["max_tokens"] == 200  # what was left
    assert (await rt.resume(child)).status == "succeeded"
    settled = await rt.get_run(parent)
    # The first child's 400 became the 50 it used; the others still hold theirs.
    assert (settled.child_tokens, settled.child_steps) == (50 + 400 + 200, 2 + 5 + 5)
    finished = await rt.get_run(child)
    assert finished.reserved_tokens is None and finished.reserved_steps is None  # settled once
    for run_id in (second, third):
        await rt.resume(run_id)
    assert (await rt.get_run(parent)).child_tokens == 50 + 10 + 10


async def test_a_parents_limit_counts_what_its_children_spent(rt):
    STATE["helper"] = helper(300, 300)  # the helper spends 600 tokens
    result = await rt.run(planner(max_tokens=1000, first=100, last=100), "plan")
    assert result.status == "succeeded"
    row = await rt.get_run(result.run_id)
    assert row.child_tokens == 600
    assert row.input_tokens + row.output_tokens + row.child_tokens == 800

    STATE["helper"] = helper(300, 300, 300)  # 900: the planner has 900 left after its step
    result = await rt.run(planner(max_tokens=1000), "plan")
    assert result.status == "limit_exceeded"  # 100 own + 900 by the child: nothing left
    assert "max_tokens reached: 1000 tokens, 900 of them by child runs" in result.reason


async def test_a_child_that_overspends_is_stopped_by_the_tree_limit(rt):
    STATE["helper"] = helper(*[400] * 10)  # would spend 4000 tokens unbounded
    result = await rt.run(planner(max_tokens=1000), "plan")
    (child,) = STATE["children"]
    child_result = await rt.result(child)
    assert child_result.status == "limit_exceeded"
    limit = next(e for _, e in await rt.events(child) if isinstance(e, LimitReached))
    assert (limit.limit, limit.maximum) == ("max_tokens", 900)  # capped at the parent's rest
    # The child stopped after the step that crossed its cap (1200: limits are checked
    # before each model call), and the planner stopped at once: it had nothing left.
    assert result.status == "limit_exceeded"
    tree = await rt.get_run(result.run_id)
    assert tree.input_tokens + tree.child_tokens == 100 + 1200
    assert "of them by child runs" in result.reason


async def test_two_children_created_at_once_cannot_both_take_the_remainder(rt):
    parent = await rt.submit(agent("planner", limits=Limits(max_tokens=1000)), "p")
    wanted = Limits(max_tokens=700, max_steps=10)
    outcomes = await asyncio.gather(
        *(rt.submit(helper(10), f"c{i}", parent=parent, limits=wanted) for i in range(2)),
        return_exceptions=True,
    )
    made = [o for o in outcomes if isinstance(o, str)]
    assert len(made) == 2  # the second got what was left, never more
    granted = sorted([(await rt.events(c))[0][1].limits["max_tokens"] for c in made])
    assert granted == [300, 700]
    assert (await rt.get_run(parent)).child_tokens == 1000
    outcomes = await asyncio.gather(
        *(rt.submit(helper(10), f"d{i}", parent=parent) for i in range(3)),
        return_exceptions=True,
    )
    assert all(isinstance(o, BudgetExhausted) for o in outcomes)


async def test_a_grandchild_is_bounded_by_the_root(rt):
    root = await rt.submit(agent("planner", limits=Limits(max_tokens=1000)), "p")
    child = await rt.submit(helper(10), "c", parent=root, limits=Limits(max_tokens=600))
    grandchild = await rt.submit(helper(10), "g", parent=child)
    assert (await rt.events(grandchild))[0][1].limits["max_tokens"] == 600
    with pytest.raises(BudgetExhausted):
        await rt.submit(helper(10), "g2", parent=child)
    assert (await rt.get_run(root)).child_tokens == 600  # the child's share covers both


async def test_show_gives_each_nodes_spend_and_the_tree_total(rt):
    from bosun.cli import tree_lines

    STATE["helper"] = helper(300, 300)
    result = await rt.run(planner(max_tokens=1000), "plan")
    tree = await rt.store.list_runs(root_id=result.run_id)
    root, child, total = tree_lines(tree, marked=result.run_id)
    assert "planner  succeeded  2 steps, 200 tokens" in root and root.endswith("<- this run")
    assert "helper  succeeded  2 steps, 600 tokens" in child and "holds" not in child
    assert total.startswith("  tree total: 4 steps, 800 tokens")
    assert total.endswith("(root's limits: max_steps 50, max_tokens 1000)")


async def test_a_retried_keyed_child_gets_its_run_back_even_when_it_took_the_budget(rt):
    parent = await rt.submit(agent("planner", limits=Limits(max_tokens=1000)), "p")
    first = await rt.submit(helper(10), "c", parent=parent, key="task-7")
    again = await rt.submit(helper(10), "c", parent=parent, key="task-7")  # a retried trigger
    assert again == first
    assert (await rt.get_run(parent)).child_tokens == 1000  # held once, not twice
    with pytest.raises(BudgetExhausted):
        await rt.submit(helper(10), "c", parent=parent, key="task-8")
