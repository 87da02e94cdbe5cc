"""Sessions: a run sees the conversation of the session's earlier runs, rebuilt from their
journals; forks and clears; both stores."""

from __future__ import annotations

import pytest
from memory_helpers import Recorder, texts

from bosun import Agent, Runtime
from bosun.memory import sessions
from bosun.memory.sessions import conversation


def _agent(name: str = "chat") -> Agent:
    return Agent(name=name, model={"provider": "scripted"}, instructions="Be brief.")


async def _turn(rt: Runtime, agent: Agent, model: Recorder, text: str, session: str, **kw):
    rt.register(agent, provider=model)
    return await rt.run(agent, text, session=session, **kw)


async def test_a_run_in_a_session_sees_the_conversation_so_far(db_url):
    agent, model = _agent(), Recorder()
    async with Runtime(db_url) as rt:
        first = await _turn(rt, agent, model, "my name is Ada", "s1")
        await _turn(rt, agent, model, "what is my name?", "s1")
        await _turn(rt, agent, model, "unrelated", "other")
    assert texts(model.requests[0]) == [("user", "my name is Ada")]
    assert texts(model.requests[1]) == [
        ("user", "my name is Ada"),
        ("assistant", first.output),
        ("user", "what is my name?"),
    ]
    assert model.requests[1][0] == {"role": "system", "content": "Be brief."}  # first, once
    assert texts(model.requests[2]) == [("user", "unrelated")]  # another session sees none


async def test_sessions_are_per_tenant(sqlite_path):
    agent, model = _agent(), Recorder()
    async with Runtime(sqlite_path) as rt:
        await _turn(rt, agent, model, "acme secret", "s", tenant="acme")
        await _turn(rt, agent, model, "hello", "s", tenant="globex")
        assert [s.name for s in await sessions.sessions(rt.store, "globex")] == ["s"]
        assert (await sessions.sessions(rt.store, "globex"))[0].runs == 1
    assert texts(model.requests[1]) == [("user", "hello")]


async def test_a_resumed_run_sees_the_same_conversation_whatever_finished_since(sqlite_path):
    """The rule reads only what never changes: runs that finished before this one was
    created. A run that finishes later (while this one waited) is not added on resume."""
    agent, model = _agent(), Recorder()
    async with Runtime(sqlite_path) as rt:
        await _turn(rt, agent, model, "one", "s")
        queued = await rt.submit(agent, "two", session="s")
        await _turn(rt, agent, model, "three (finished after two was created)", "s")
        run = await rt.get_run(queued)
        seen = await conversation(rt.store, "default", "s", run.created_at)
    assert [m["content"] for m in seen] == ["one", "saw 2"]


async def test_fork_starts_with_the_source_conversation_then_diverges(db_url):
    agent, model = _agent(), Recorder()
    async with Runtime(db_url) as rt:
        await _turn(rt, agent, model, "plan A", "main")
        await sessions.fork(rt.store, "default", "main", "branch")
        await _turn(rt, agent, model, "on main after the fork", "main")
        await _turn(rt, agent, model, "on the branch", "branch")
        listed = {s.name: s for s in await sessions.sessions(rt.store, "default")}
        with pytest.raises(Exception, match="already exists"):
            await sessions.fork(rt.store, "default", "main", "branch")
    assert texts(model.requests[2]) == [
        ("user", "plan A"),
        ("assistant", "saw 2"),
        ("user", "on the branch"),
    ]
    assert listed["branch"].forked_from == "main" and listed["main"].runs == 2


async def test_clear_hides_everything_before_it_from_later_runs(db_url):
    agent, model = _agent(), Recorder()
    async with Runtime(db_url) as rt:
        await _turn(rt, agent, model, "old topic", "s")
        await sessions.clear(rt.store, "default", "s")
        await _turn(rt, agent, model, "fresh start", "s")
        with pytest.raises(Exception, match="no session"):
            await sessions.clear(rt.store, "default", "nope")
    assert texts(model.requests[1]) == [("user", "fresh start")]


async def test_a_run_without_a_session_reads_nothing_more(sqlite_path):
    agent, model = _agent(), Recorder()
    async with Runtime(sqlite_path) as rt:
        await _turn(rt, agent, model, "a", None)  # type: ignore[arg-type]
        await _turn(rt, agent, model, "b", None)  # type: ignore[arg-type]
    assert texts(model.requests[1]) == [("user", "b")]
