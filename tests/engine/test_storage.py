"""Storage stays bounded: per-step bytes do not grow with run length; big payloads stored once."""

from __future__ import annotations

import dataclasses
import sqlite3

from bosun import Agent, Limits, Runtime, tool

NO_LIMITS = Limits(max_steps=None, max_tool_calls=None, max_repeats=None, max_wall_seconds=None)


@tool(effect="read", idempotent=True)
async def bump(n: int) -> dict:
    """Return a small record."""
    return {"n": n, "status": "ok"}


@tool(effect="read", idempotent=True)
async def document(name: str) -> str:
    """Return a large document."""
    return "lorem ipsum " * 10_000  # ~120 KB


def agent_with_steps(steps: int) -> Agent:
    turns = [{"tool_calls": [{"name": "bump", "arguments": {"n": i}}]} for i in range(steps - 1)]
    return Agent(
        name=f"steps{steps}",
        model={"provider": "scripted", "turns": [*turns, {"content": "done"}]},
        tools=[bump],
        limits=NO_LIMITS,
    )


def journal_bytes(db: str, run_id: str) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT sum(length(data)) FROM events WHERE run=(SELECT no FROM runs WHERE id=?)",
            (run_id,),
        ).fetchone()[0]


async def test_bytes_per_step_do_not_grow_with_run_length(sqlite_path):
    async with Runtime(sqlite_path) as rt:
        short = await rt.run(agent_with_steps(50), "go")
        long = await rt.run(agent_with_steps(500), "go")
    per_step_short = journal_bytes(sqlite_path, short.run_id) / 50
    per_step_long = journal_bytes(sqlite_path, long.run_id) / 500
    assert short.status == long.status == "succeeded"
    # Only digits in counters grow (step 9 vs step 499), never the history.
    assert per_step_long < per_step_short * 1.1


async def test_large_results_are_stored_once_by_hash_and_read_back(sqlite_path):
    agent = Agent(
        name="docs",
        model={
            "provider": "scripted",
            "turns": [
                {"tool_calls": [{"name": "document", "arguments": {"name": "terms"}}]},
                {"content": "read it"},
            ],
        },
        tools=[document],
    )
    async with Runtime(sqlite_path) as rt:
        first = await rt.run(agent, "a")
        second = await rt.run(agent, "b")
        events = await rt.events(second.run_id)
    finished = next(e for _, e in events if e.kind == "tool_finished")
    assert finished.result == "lorem ipsum " * 10_000
    with sqlite3.connect(sqlite_path) as conn:
        blobs = conn.execute("SELECT count(*), sum(length(data)) FROM blobs").fetchone()
    assert blobs[0] == 1 and blobs[1] > 120_000  # two runs, one stored copy
    assert journal_bytes(sqlite_path, first.run_id) < 10_000


def test_an_event_is_stored_once_per_field_its_time_in_its_own_column():
    from bosun.journal.codec import decode_event, encode_event
    from bosun.journal.events import EVENT_TYPES, RunResumed, ToolStarted

    started = ToolStarted(ts=1795339193.25, call_id="c1", tool="t", attempt=1, idempotency_key="k")
    data = encode_event(started)
    assert b"ts" not in data and b"1795339193" not in data
    assert decode_event("tool_started", 1795339193.25, data) == started
    assert decode_event(
        "run_resumed", 2.0, encode_event(RunResumed(ts=2.0, worker="w", from_seq=3))
    )
    # Rows written by earlier versions carried `ts` in the JSON too: they still decode.
    old = b'{"ts":5.0,"worker":"w","from_seq":3}'
    assert decode_event("run_resumed", 5.0, old) == RunResumed(ts=5.0, worker="w", from_seq=3)
    assert all(dataclasses.fields(cls)[0].name == "ts" for cls in EVENT_TYPES.values())


def test_optional_fields_at_their_empty_defaults_take_no_journal_space_and_decode_back():
    """Fields added to an event later go last with an empty default; a row without them
    (most rows) must not grow, and must read back as the same event."""
    from bosun.journal.codec import decode_event, encode_event
    from bosun.journal.events import RunStarted, ToolFinished

    plain = ToolFinished(call_id="c1", tool="add", result={"n": 1}, duration_ms=1.5, ts=7.0)
    data = encode_event(plain)
    assert b"full" not in data
    assert decode_event("tool_finished", 7.0, data) == plain
    # A value that merely looks like the default's JSON is kept.
    tricky = ToolFinished(
        call_id="c2", tool="t", result=',"full":null', duration_ms=1.0, full={"x": None}, ts=1.0
    )
    assert decode_event("tool_finished", 1.0, encode_event(tricky)) == tricky
    started = RunStarted(agent="a", agent_version="a@1", input="go", ts=2.0)
    assert (
        encode_event(started)
        == b'{"agent":"a","agent_version":"a@1","input":"go","tenant":"default"}'
    )
    nested = RunStarted(agent="a", agent_version="a@1", input="go", tags={"k": "v"}, ts=2.0)
    assert decode_event("run_started", 2.0, encode_event(nested)) == nested
