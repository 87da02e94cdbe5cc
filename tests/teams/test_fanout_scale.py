"""A fan-out's parent woken once per child, on both stores: each wake replays only the tail
of its journal (the state its loop parked with, kept by the Runtime), and that state is
exactly the one a full replay of the journal gives, wake after wake, whoever else drove the
run in between; a re-park writes a small `RunWaiting` whatever the number of children."""

from __future__ import annotations

from bosun import Agent, Limits, Runtime, Worker
from bosun.engine.state import rebuild
from bosun.journal.codec import encode_event
from bosun.journal.events import RunWaiting, ToolFinished

CHILDREN = 12


def scripted(*turns: dict) -> dict:
    return {"provider": "scripted", "turns": list(turns)}


def fan_out(n: int = CHILDREN) -> Agent:
    waiter = Agent(
        name="waiter",
        model=scripted({"tool_calls": [{"name": "await_go", "arguments": {}}]}, {"content": "A"}),
        tools=["team_tools.py:await_go"],
        limits=Limits(max_steps=3),
    )
    turn = {"tool_calls": [{"name": "waiter", "arguments": {"input": f"t{i}"}} for i in range(n)]}
    return Agent(
        name="lead",
        model=scripted(turn, {"content": "joined"}),
        tools=[waiter],
        limits=Limits(max_steps=n * 2 + 5, max_tool_calls=n + 5),
    )


async def drain(rt: Runtime) -> None:
    await Worker(rt, poll_interval=0.01).serve(exit_when_idle=True)


async def children(rt: Runtime, parent_id: str) -> list[str]:
    kids = await rt.store.list_runs(parent_id=parent_id, limit=100)
    return [k.id for k in sorted(kids, key=lambda k: k.created_at)]


async def test_every_wake_replays_a_tail_and_gets_exactly_the_full_replays_state(db_url):
    async with Runtime(db_url) as rt:
        first = await rt.run(fan_out(), "fan out")
        parent_id = first.run_id
        assert first.status == "waiting"  # every child waits for its signal
        kids = await children(rt, parent_id)
        assert len(kids) == CHILDREN

        for woken, kid in enumerate(kids, start=1):
            await rt.signal(kid, "go", {})
            hits = rt.parked.hits
            await drain(rt)
            events = await rt.events(parent_id)
            assert len([e for _, e in events if isinstance(e, ToolFinished)]) == woken
            # The child woken by its signal and the parent woken by the child's end: each
            # took back the state it parked with and replayed only the tail.
            assert rt.parked.hits == hits + 2
            if woken < CHILDREN:
                # Parked again: the state kept for its next wake is the full replay's.
                assert rt.parked.peek(parent_id) == rebuild(parent_id, events)
        result = await rt.result(parent_id)

    assert result.status == "succeeded" and result.output == "joined"
    parks = [e for _, e in events if isinstance(e, RunWaiting)]
    assert len(parks) == CHILDREN  # parked once, then once again after each child but the last
    assert [p.children for p in parks] == list(range(CHILDREN, 0, -1))
    # A re-park costs the same bytes whatever is still open (it used to list every wait).
    assert max(len(encode_event(p)) for p in parks) < 80


async def test_a_state_kept_here_takes_in_what_another_process_journaled_meanwhile(db_url):
    async with Runtime(db_url) as here, Runtime(db_url) as there:
        parent_id = (await here.run(fan_out(4), "fan out")).run_id
        kids = await children(here, parent_id)
        kept_at = here.parked.peek(parent_id).seq

        # Another process wakes the parent twice and parks it again each time.
        for kid in kids[:2]:
            await there.signal(kid, "go", {})
            await drain(there)
        assert len(await here.events(parent_id)) > kept_at  # its journal moved on
        # Now this one drives it: its old state plus the tail, nothing lost or doubled.
        await here.signal(kids[2], "go", {})
        hits = here.parked.hits
        await drain(here)
        assert here.parked.hits == hits + 2  # the child, and the parent despite the others
        events = await here.events(parent_id)
        assert here.parked.peek(parent_id) == rebuild(parent_id, events)
        assert [e.tool for _, e in events if isinstance(e, ToolFinished)] == ["waiter"] * 3

        await here.signal(kids[3], "go", {})
        await drain(here)
        assert (await here.result(parent_id)).output == "joined"


async def test_a_kept_state_that_does_not_match_the_journal_is_dropped_for_a_full_replay(db_url):
    async with Runtime(db_url) as rt:
        parent_id = (await rt.run(fan_out(2), "fan out")).run_id
        kids = await children(rt, parent_id)
        kept = rt.parked.peek(parent_id)
        events = await rt.events(parent_id)
        # A state whose seq's event is not the journal's (as if its park had never been
        # committed): the drive must not trust it.
        wrong = rebuild(parent_id, events[:-1])
        rt.parked.keep(wrong, events[0][1])
        await rt.signal(kids[0], "go", {})
        hits = rt.parked.hits
        await drain(rt)
        assert rt.parked.hits == hits + 1  # the child; the parent replayed in full
        events = await rt.events(parent_id)
        assert rt.parked.peek(parent_id) == rebuild(parent_id, events) != kept
        await rt.signal(kids[1], "go", {})
        await drain(rt)
        assert (await rt.result(parent_id)).output == "joined"
