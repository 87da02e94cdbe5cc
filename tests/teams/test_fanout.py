"""Parallel fan-out and join, on both stores, with the scripted model: a model turn that
calls several agents starts every child before the parent parks; each child's result is
journaled in the parent as it arrives; a failed child leaves its siblings alone unless
`on_child_failure: cancel_siblings` is declared; siblings share the parent's budget and
together never spend past it; cancel and kill switches stop the whole tree."""

from __future__ import annotations

import asyncio
import textwrap

import pytest

from bosun import Agent, BudgetExhausted, Limits, Runtime, SpecError, Worker, tool
from bosun.engine.state import rebuild
from bosun.journal.events import (
    LimitReached,
    RunStarted,
    RunWaiting,
    ToolFailed,
    ToolFinished,
    WaitRequested,
)
from bosun.spec.agent_tool import agent_tool
from bosun.spec.loader import load_agent

LOOKUPS: list[str] = []


@tool(effect="read", idempotent=True)
def lookup(order: str) -> dict:
    """Look an order up."""
    LOOKUPS.append(order)
    return {"order": order}


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
    await Worker(rt, poll_interval=0.01).serve(exit_when_idle=True)


def waiter(name: str, answer: str = "done") -> Agent:
    """A child that waits for the `go` signal, then answers."""
    return Agent(
        name=name,
        model=scripted(calls(("await_go", {})), {"content": answer}),
        tools=["team_tools.py:await_go"],
        limits=Limits(max_steps=3),
    )


def quick(name: str, answer: str) -> Agent:
    return Agent(name=name, model=scripted({"content": answer}), limits=Limits(max_steps=3))


def broken(name: str) -> Agent:
    return Agent(
        name=name, model=scripted({"error": "the endpoint is down"}), limits=Limits(max_steps=3)
    )


def lead(*children, turns=None, **options) -> Agent:
    names = [c.name for c in children]
    fan_out = calls(*[(n, {"input": f"task for {n}"}) for n in names])
    return Agent(
        name="lead",
        model=scripted(*(turns or [fan_out, {"content": "all done"}])),
        tools=list(children),
        **options,
    )


async def by_agent(rt: Runtime, parent_id: str) -> dict:
    return {k.agent: k for k in await rt.store.list_runs(parent_id=parent_id, limit=100)}


async def test_a_fan_out_starts_every_child_and_journals_each_result_as_it_arrives(db_url):
    parent = lead(waiter("a", "A"), waiter("b", "B"), waiter("c", "C"))
    async with Runtime(db_url) as rt:
        parent_id = await rt.submit(parent, "fan out")
        await drain(rt)
        kids = await by_agent(rt, parent_id)
        # Every child was created and queued before the parent parked, on all of them.
        assert sorted(kids) == ["a", "b", "c"]
        assert all(k.status == "waiting" for k in kids.values())
        [parked] = of(await rt.events(parent_id), RunWaiting)
        assert parked.children == 3 and parked.reason == "waiting for 3 wait(s)"

        await rt.signal(kids["b"].id, "go", {})
        await drain(rt)
        events = await rt.events(parent_id)
        # b's answer is in the parent's journal while a and c still run.
        assert [e.result["answer"] for e in of(events, ToolFinished, tool="b")] == ["B"]
        assert not of(events, ToolFinished, tool="a") and not of(events, ToolFinished, tool="c")
        assert (await rt.get_run(parent_id)).status == "waiting"
        # It parked again on the other two; the journal says which (a re-park lists none).
        assert of(events, RunWaiting)[-1].children == 2
        open_waits = {c.wait_id for c in rebuild(parent_id, events).open_calls.values()}
        assert open_waits == {e.wait_id for e in of(events, WaitRequested) if e.tool in ("a", "c")}

        for name in ("c", "a"):
            await rt.signal(kids[name].id, "go", {})
            await drain(rt)
        result = await rt.result(parent_id)
        events = await rt.events(parent_id)

    assert result.status == "succeeded" and result.output == "all done"
    answers = [e.tool for e in of(events, ToolFinished)]
    assert answers == ["b", "c", "a"]  # in the order the children ended
    assert len(of(events, WaitRequested)) == 3  # one durable wait per call, never a second


async def test_a_failing_child_leaves_its_siblings_running_by_default(db_url):
    parent = lead(quick("a", "A"), broken("b"), waiter("c", "C"))
    async with Runtime(db_url) as rt:
        parent_id = await rt.submit(parent, "fan out")
        await drain(rt)
        kids = await by_agent(rt, parent_id)
        assert (kids["a"].status, kids["b"].status, kids["c"].status) == (
            "succeeded",
            "failed",
            "waiting",
        )
        events = await rt.events(parent_id)
        assert of(events, ToolFailed, tool="b")[0].error_type == "child_failed"
        await rt.signal(kids["c"].id, "go", {})
        await drain(rt)
        result = await rt.result(parent_id)
        events = await rt.events(parent_id)

    assert result.status == "succeeded"
    assert {e.tool: e.result["answer"] for e in of(events, ToolFinished)} == {"a": "A", "c": "C"}


async def test_cancel_siblings_cancels_the_running_children_not_the_finished_ones(db_url):
    # A grandchild under c: cancelling c cancels its whole subtree.
    deep = waiter("deep")
    middle = Agent(
        name="c",
        model=scripted(calls(("deep", {"input": "dig"})), {"content": "C"}),
        tools=[deep],
        limits=Limits(max_steps=6),
    )
    parent = lead(
        quick("a", "A"),
        agent_tool(broken("b"), on_child_failure="cancel_siblings"),
        middle,
        waiter("d"),
    )
    async with Runtime(db_url) as rt:
        parent_id = await rt.submit(parent, "fan out")
        await drain(rt)
        kids = await by_agent(rt, parent_id)
        [grandchild] = await rt.store.list_runs(parent_id=kids["c"].id)
        result = await rt.result(parent_id)
        events = await rt.events(parent_id)

    assert result.status == "succeeded" and result.output == "all done"
    assert {k: v.status for k, v in kids.items()} == {
        "a": "succeeded",  # finished first: its result stands
        "b": "failed",
        "c": "cancelled",
        "d": "cancelled",
    }
    assert (await_status := grandchild.status) == "cancelled", await_status
    [failed] = of(events, ToolFailed, tool="b")
    assert "cancel_siblings" in failed.message
    assert kids["c"].id in failed.message and kids["d"].id in failed.message
    assert of(events, ToolFinished, tool="a")[0].result["answer"] == "A"
    assert {e.error_type for e in of(events, ToolFailed) if e.tool in ("c", "d")} == {
        "child_cancelled"
    }


async def test_cancel_siblings_declared_on_the_agent_covers_all_its_agent_tools(db_url):
    parent = lead(broken("b"), waiter("c"), on_child_failure="cancel_siblings")
    async with Runtime(db_url) as rt:
        parent_id = await rt.submit(parent, "fan out")
        await drain(rt)
        kids = await by_agent(rt, parent_id)
    assert (kids["b"].status, kids["c"].status) == ("failed", "cancelled")


def test_on_child_failure_and_share_in_yaml(tmp_path):
    (tmp_path / "worker.yaml").write_text("name: worker\nmodel: {provider: scripted}\n")
    (tmp_path / "lead.yaml").write_text(
        textwrap.dedent(
            """
            name: lead
            model: {provider: scripted}
            on_child_failure: cancel_siblings
            tools:
              - agent: worker
                share: 0.25
                on_child_failure: continue
            """
        )
    )
    agent = load_agent(str(tmp_path / "lead.yaml"))
    assert agent.on_child_failure == "cancel_siblings"
    config = agent.tool_map["worker"].source.config
    assert (config["share"], config["on_child_failure"]) == (0.25, "continue")
    (tmp_path / "bad.yaml").write_text(
        "name: bad\nmodel: {provider: scripted}\ntools:\n  - agent: worker\n    share: 2\n"
    )
    with pytest.raises(SpecError, match="share"):
        load_agent(str(tmp_path / "bad.yaml"))
    (tmp_path / "bad2.yaml").write_text(
        "name: bad\nmodel: {provider: scripted}\non_child_failure: abort\n"
    )
    with pytest.raises(SpecError, match="on_child_failure"):
        load_agent(str(tmp_path / "bad2.yaml"))
    with pytest.raises(SpecError, match="on_child_failure"):
        agent_tool(quick("x", "x"), on_child_failure="stop")


def spender(name: str, steps: int) -> Agent:
    """A child that would look orders up for `steps` model steps if its budget let it."""
    return Agent(
        name=name,
        model=scripted(
            *[calls(("lookup", {"order": f"{name}-{i}"})) for i in range(steps)],
            {"content": "finished"},
        ),
        tools=[lookup],
        limits=Limits(max_steps=steps + 1),
    )


async def tree_steps(rt: Runtime, root_id: str) -> tuple[int, list]:
    runs = await rt.store.list_runs(root_id=root_id, limit=1000)
    return sum(r.steps for r in runs), runs


async def test_twenty_children_split_a_budget_they_would_together_exceed(db_url):
    """20 children each want 6 steps (120); the parent has 41 in all. After its first step
    the 40 left are split evenly (2 each): every child starts, none spends past its share,
    and the tree stops at the parent's budget."""
    kids = [spender(f"k{i:02d}", 5) for i in range(20)]
    parent = lead(*kids, limits=Limits(max_steps=41))
    async with Runtime(db_url) as rt:
        parent_id = await rt.submit(parent, "fan out")
        await drain(rt)
        result = await rt.result(parent_id)
        total, runs = await tree_steps(rt, parent_id)
        children = [r for r in runs if r.id != parent_id]
        budgets = {r.agent: of(await rt.events(r.id), RunStarted)[0].limits for r in children}
        parent_row = await rt.get_run(parent_id)

    assert len(children) == 20
    assert all(b["max_steps"] == 2 for b in budgets.values())  # nobody starved
    assert all(r.steps <= 2 and r.status == "limit_exceeded" for r in children)
    assert total == 41  # exactly the parent's budget, never past it
    assert result.status == "limit_exceeded"
    assert "by child runs" in result.reason
    # Every reservation settled: what the parent counts for its children is what they spent.
    assert parent_row.child_steps == sum(r.steps for r in children)
    assert all(r.reserved_steps is None for r in children)


async def test_a_child_that_finds_no_budget_left_fails_visibly(db_url):
    """10 steps left for 20 children: the first 10 get one step each, the other 10 fail
    their calls with `budget_exhausted` (the model sees it); the tree spends 11, no more."""
    kids = [spender(f"k{i:02d}", 3) for i in range(20)]
    parent = lead(*kids, limits=Limits(max_steps=11))
    async with Runtime(db_url) as rt:
        parent_id = await rt.submit(parent, "fan out")
        await drain(rt)
        events = await rt.events(parent_id)
        total, runs = await tree_steps(rt, parent_id)

    refused = [e for e in of(events, ToolFailed) if e.error_type == "budget_exhausted"]
    assert len(runs) - 1 == 10 and len(refused) == 10
    assert all("max_steps" in e.message for e in refused)
    assert total <= 11
    assert of(events, LimitReached)


async def test_an_explicit_share_caps_what_one_child_may_reserve(db_url):
    child = spender("k", 10)
    parent = Agent(
        name="lead",
        model=scripted(calls(("k", {"input": "go"})), {"content": "done"}),
        tools=[agent_tool(child, share=0.25)],
        limits=Limits(max_steps=41),
    )
    async with Runtime(db_url) as rt:
        parent_id = await rt.submit(parent, "go")
        await drain(rt)
        [kid] = await rt.store.list_runs(parent_id=parent_id)
        [started] = of(await rt.events(kid.id), RunStarted)
    assert started.limits["max_steps"] == 10  # a quarter of the 40 left


async def test_siblings_created_at_once_from_two_processes_cannot_overspend(db_url):
    """Two runtimes (two connections) create 12 children of one parent at the same time,
    each asking for the whole remainder's worth (5 of 20 steps): exactly 4 fit."""
    parent = Agent(name="lead", model=scripted({"content": "x"}), limits=Limits(max_steps=20))
    child = quick("k", "k")
    async with Runtime(db_url) as one, Runtime(db_url) as two:
        parent_id = await one.submit(parent, "go")
        [run] = await one.store.claim(one.owner, limit=1, lease_seconds=30)
        state = rebuild(parent_id, await one.store.events(parent_id))
        limits = Limits(max_steps=5)

        async def spawn(rt: Runtime, i: int) -> str | None:
            try:
                return await rt._spawn_child(
                    child.version_id, child.snapshot(), "x", state, f"{parent_id}:{i}", limits
                )
            except BudgetExhausted:
                return None

        made = await asyncio.gather(*[spawn(one if i % 2 else two, i) for i in range(12)])
        row = await one.get_run(parent_id)
        kids = await one.store.list_runs(parent_id=parent_id)
        del run

    # Each child got at most 5, later ones what was left; together exactly the 20 steps.
    assert sum(1 for m in made if m) == len(kids) >= 4
    assert all(1 <= k.reserved_steps <= 5 for k in kids)
    assert row.child_steps == 20 == sum(k.reserved_steps for k in kids)
    assert made.count(None) == 12 - len(kids) > 0  # the rest: BudgetExhausted


async def test_cancel_root_stops_every_descendant(db_url):
    inner = waiter("inner")
    middle = Agent(
        name="middle",
        model=scripted(calls(("inner", {"input": "x"})), {"content": "m"}),
        tools=[inner],
        limits=Limits(max_steps=10),
    )
    parent = lead(middle, waiter("side"))
    async with Runtime(db_url) as rt:
        parent_id = await rt.submit(parent, "go")
        await drain(rt)
        assert len(await rt.store.list_runs(root_id=parent_id)) == 4
        await rt.cancel(parent_id)
        await drain(rt)
        tree = await rt.store.list_runs(root_id=parent_id)

    assert {r.agent: r.status for r in tree} == {
        "lead": "cancelled",
        "middle": "cancelled",
        "inner": "cancelled",
        "side": "cancelled",
    }


async def test_a_kill_switch_on_an_agent_stops_every_run_of_it_in_the_fan_out(db_url):
    """`bosun kill --scope agent:worker` halts each parked or running `worker` child at its
    next step (and the runs below them); the parent is told `child_killed` for each."""
    leaf = waiter("leaf")
    worker = Agent(
        name="worker",
        model=scripted(calls(("leaf", {"input": "x"})), {"content": "w"}),
        tools=[leaf],
        limits=Limits(max_steps=5),
    )
    parent = Agent(
        name="lead",
        model=scripted(
            calls(
                *[("worker", {"input": f"job {i}"}) for i in range(3)], ("other", {"input": "o"})
            ),
            {"content": "workers are off"},
        ),
        tools=[worker, quick("other", "O")],
    )
    async with Runtime(db_url) as rt:
        parent_id = await rt.submit(parent, "go")
        await drain(rt)
        await rt.kill("agent:worker", reason="workers misbehave", by="ops@example.com")
        await rt.wake_killed()
        await drain(rt)
        result = await rt.result(parent_id)
        tree = await rt.store.list_runs(root_id=parent_id)
        events = await rt.events(parent_id)

    assert result.status == "succeeded" and result.output == "workers are off"
    workers = [r for r in tree if r.agent == "worker"]
    assert len(workers) == 3 and all(r.status == "killed" for r in workers)
    # The leaves under the killed workers end too (their parent ended: they are cancelled
    # with it, or killed by the switch covering their ancestors).
    assert all(r.status in ("killed", "cancelled") for r in tree if r.agent == "leaf")
    killed = [e for e in of(events, ToolFailed, tool="worker")]
    assert len(killed) == 3 and {e.error_type for e in killed} == {"child_killed"}
    assert of(events, ToolFinished, tool="other")[0].result["answer"] == "O"


async def test_runtime_run_drives_a_fan_out_concurrently(db_url):
    """`Runtime.run` drives the children side by side: each child's slow tool waits until
    all four are inside it at once, which only concurrent children can reach."""
    kids = [
        Agent(
            name=f"k{i}",
            model=scripted(calls(("overlap", {"order": str(i)})), {"content": f"K{i}"}),
            tools=["fanout_tools.py:overlap"],
            limits=Limits(max_steps=3),
        )
        for i in range(4)
    ]
    peak = kids[0].tool_map["overlap"].fn.__globals__["PEAK"]
    peak[0] = 0
    parent = lead(*kids)
    async with Runtime(db_url) as rt:
        result = await rt.run(parent, "go")
        tree = await rt.store.list_runs(root_id=result.run_id)

    assert result.status == "succeeded" and result.output == "all done"
    assert len(tree) == 5 and all(r.status == "succeeded" for r in tree)
    assert peak[0] == 4


@tool(effect="irreversible")
def refund(order: str) -> dict:
    """Refund an order. Cannot be undone."""
    return {"refunded": order}


async def test_the_inbox_shows_where_in_the_tree_an_approval_was_asked(db_url):
    """The operations layer (GET /api/approvals and the console inbox read it) gives each
    approval its path, root first; approving resumes that child, then its ancestors."""
    from types import SimpleNamespace

    from bosun.server import ops

    policy = {
        "name": "refunds",
        "rules": [{"name": "finance", "tools": ["refund"], "effect": "require_approval"}],
    }
    clerk = Agent(
        name="clerk",
        model=scripted(calls(("refund", {"order": "1"})), {"content": "refunded"}),
        tools=[refund],
        policy=policy,
        limits=Limits(max_steps=3),
    )
    desk = Agent(
        name="desk",
        model=scripted(calls(("clerk", {"input": "refund 1"})), {"content": "desk: done"}),
        tools=[clerk],
        limits=Limits(max_steps=6),
    )
    parent = lead(desk, quick("other", "O"))
    async with Runtime(db_url) as rt:
        root_id = await rt.submit(parent, "refund")
        await drain(rt)
        tree = {r.agent: r for r in await rt.store.list_runs(root_id=root_id)}
        state = SimpleNamespace(runtime=rt)
        [shown] = await ops.approvals(state, SimpleNamespace(tenant="default"))  # type: ignore[arg-type]
        await rt.approve(shown.approval_id, by="finance@example.com")
        await drain(rt)
        result = await rt.result(root_id)

    assert [(s.agent, s.run_id) for s in shown.path] == [
        ("lead", root_id),
        ("desk", tree["desk"].id),
        ("clerk", tree["clerk"].id),
    ]
    assert result.status == "succeeded" and result.output == "all done"
