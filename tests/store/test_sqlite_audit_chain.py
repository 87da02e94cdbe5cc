"""SQLite: audit records of journal events leave the step's commit, and none is lost or doubled.

A governance event (a policy decision, an approval request) is committed with the step it
governs; its hash-chained audit record follows within `CATCH_UP_DELAY`, or at once when the run
stops running. These tests read the chain the way another process (`bosun audit verify`)
would: through a connection of their own.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time

from bosun.govern import audit
from bosun.journal.events import PolicyDecided, RunFinished, RunStarted, ToolFinished
from bosun.store import RUNNING, SUCCEEDED, RunRecord, RunSummary
from bosun.store.sqlite import CATCH_UP_DELAY, SqliteStore
from bosun.store.sqlite.migrations import LATEST as VERSION


def decided(call: str) -> PolicyDecided:
    return PolicyDecided(
        ts=time.time(),
        call_id=call,
        tool="lookup",
        verdict="allow",
        rule="default",
        reason="no rule matched",
        policy_version="p1",
    )


def done(call: str) -> ToolFinished:
    return ToolFinished(
        ts=time.time(), call_id=call, tool="lookup", result={"ok": 1}, duration_ms=1
    )


def summary(status: str = RUNNING, steps: int = 1) -> RunSummary:
    return RunSummary(status=status, steps=steps, tool_calls=steps, input_tokens=0,
                      output_tokens=0, cost=0.0)  # fmt: skip


async def start(store: SqliteStore, run_id: str, owner: str = "w1") -> None:
    run = RunRecord(
        id=run_id, agent="support", agent_version="support-v1", input="hi",
        spec={"name": "support"}, status=RUNNING, lease_owner=owner,
        lease_expires_at=time.time() + 60,
    )  # fmt: skip
    started = RunStarted(ts=time.time(), agent="support", agent_version="support-v1", input="hi")
    await store.create_run(run, [started])


def chained_calls(path: str, run_id: str) -> list[str]:
    """The call ids of the run's chained policy decisions, as another process reads them."""
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT json_extract(data, '$.call_id') FROM audit"
            " WHERE action='policy_decided' AND subject=? ORDER BY seq",
            (run_id,),
        ).fetchall()
    return [r[0] for r in rows]


async def test_a_finished_run_has_every_decision_chained_once_in_journal_order(tmp_path):
    path = str(tmp_path / "a.db")
    store = SqliteStore(path)
    await store.open()
    try:
        await start(store, "r1")
        seq = 2
        for i in range(5):
            await store.append("r1", [decided(f"c{i}")], first_seq=seq, owner="w1",
                               summary=summary(steps=i + 1))  # fmt: skip
            await store.append("r1", [done(f"c{i}")], first_seq=seq + 1, owner="w1",
                               summary=summary(steps=i + 1))  # fmt: skip
            seq += 2
        finished = RunFinished(ts=time.time(), status=SUCCEEDED, reason="done", output="ok")
        await store.append("r1", [finished], first_seq=seq, owner="w1",
                           summary=summary(SUCCEEDED, 5))  # fmt: skip
        # Committed with the run's last commit, visible to any other connection.
        assert chained_calls(path, "r1") == [f"c{i}" for i in range(5)]
        assert (await audit.verify(store)).ok
    finally:
        await store.close()


async def test_a_running_runs_decisions_reach_the_chain_within_the_delay(tmp_path):
    path = str(tmp_path / "a.db")
    store = SqliteStore(path)
    await store.open()
    try:
        await start(store, "r1")
        await store.append("r1", [decided("c0")], first_seq=2, owner="w1", summary=summary())
        committed = time.monotonic()
        deadline = committed + CATCH_UP_DELAY + 10  # generous: a slow machine only makes it late
        while not chained_calls(path, "r1") and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert chained_calls(path, "r1") == ["c0"]
        assert (await store.get_run("r1")).status == RUNNING
    finally:
        await store.close()


async def test_the_process_reading_the_chain_sees_its_own_committed_decisions(tmp_path):
    store = SqliteStore(str(tmp_path / "a.db"))
    await store.open()
    try:
        await start(store, "r1")
        await store.append("r1", [decided("c0")], first_seq=2, owner="w1", summary=summary())
        records = await store.audit_records()
        assert [r.entry.data.get("call_id") for r in records if r.entry.subject == "r1"] == ["c0"]
    finally:
        await store.close()


def crash(store: SqliteStore) -> None:
    """What SIGKILL leaves: the committed database; nothing of the store's memory."""
    if store._catch_up_timer is not None:
        store._catch_up_timer.cancel()
    store._conn.close()
    store._conn = None


async def test_a_worker_taking_over_chains_what_a_crashed_worker_had_not(tmp_path):
    path = str(tmp_path / "a.db")
    first = SqliteStore(path)
    await first.open()
    await start(first, "r1", owner="w1")
    await first.append("r1", [decided("c0")], first_seq=2, owner="w1", summary=summary())
    await first.append("r1", [done("c0"), decided("c1")], first_seq=3, owner="w1",
                       summary=summary(steps=2))  # fmt: skip
    crash(first)
    assert chained_calls(path, "r1") == []  # committed events, records still in memory: lost

    second = SqliteStore(path)
    await second.open()
    try:
        with sqlite3.connect(path) as conn:  # the lease expired; w2 takes the run over
            conn.execute("UPDATE runs SET lease_owner='w2' WHERE id='r1'")
        await second.append("r1", [done("c1"), decided("c2")], first_seq=5, owner="w2",
                            summary=summary(steps=3))  # fmt: skip
        finished = RunFinished(ts=time.time(), status=SUCCEEDED, reason="done", output="ok")
        await second.append("r1", [finished], first_seq=7, owner="w2",
                            summary=summary(SUCCEEDED, 3))  # fmt: skip
        assert chained_calls(path, "r1") == ["c0", "c1", "c2"]
        assert (await audit.verify(second)).ok
    finally:
        await second.close()


async def test_a_worker_that_lost_its_lease_never_chains_a_record_twice(tmp_path):
    path = str(tmp_path / "a.db")
    old = SqliteStore(path)
    await old.open()
    await start(old, "r1", owner="w1")
    await old.append("r1", [decided("c0")], first_seq=2, owner="w1", summary=summary())

    new = SqliteStore(path)  # w1 stalls; its lease expires and w2 finishes the run
    await new.open()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE runs SET lease_owner='w2' WHERE id='r1'")
    finished = RunFinished(ts=time.time(), status=SUCCEEDED, reason="done", output="ok")
    await new.append("r1", [finished], first_seq=3, owner="w2", summary=summary(SUCCEEDED))
    await new.close()
    assert chained_calls(path, "r1") == ["c0"]

    await old.close()  # w1 comes back and writes what it still holds
    assert chained_calls(path, "r1") == ["c0"]
    again = SqliteStore(path)
    await again.open()
    assert (await audit.verify(again)).ok
    await again.close()


async def test_a_version_3_database_is_not_chained_again_when_its_runs_resume(tmp_path):
    path = str(tmp_path / "v3.db")
    current = SqliteStore(path)  # write a run the way version 3 did: records chained at once
    await current.open()
    await start(current, "r1")
    await current.append("r1", [decided("c0")], first_seq=2, owner="w1", summary=summary())
    await current.close()
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE runs DROP COLUMN audited_seq")
        conn.execute("DROP TABLE bosun_migrations")  # layout 3 predates it
        conn.execute("PRAGMA user_version=3")

    upgraded = SqliteStore(path)
    await upgraded.open()
    try:
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == VERSION
            assert conn.execute("SELECT audited_seq FROM runs WHERE id='r1'").fetchone() == (2,)
        finished = RunFinished(ts=time.time(), status=SUCCEEDED, reason="done", output="ok")
        await upgraded.append("r1", [finished], first_seq=3, owner="w1",
                              summary=summary(SUCCEEDED))  # fmt: skip
        assert chained_calls(path, "r1") == ["c0"]
        assert (await audit.verify(upgraded)).ok
    finally:
        await upgraded.close()
