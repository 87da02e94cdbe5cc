"""`bosun audit verify` sees records cut from the end of the chain, on both stores.

The tampering is done the way an attacker with database access would: SQL on the audit
tables, from a connection of its own. Three anchors catch it: the head row the store moves
with every append (`audit_head`), the journal (every governance event it holds has its
record), and a head recorded elsewhere with `bosun audit head` (`--expect-head`).
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import time

import psycopg
import pytest

from bosun import Agent, Runtime, tool
from bosun.cli import main as cli_main
from bosun.govern import audit
from bosun.journal.audit import GENESIS, AuditEntry, chain_hash
from bosun.journal.events import PolicyDecided, RunFinished, RunStarted
from bosun.store import RUNNING, SUCCEEDED, RunRecord, RunSummary
from bosun.store.sqlite import SqliteStore


@tool(effect="read", idempotent=True)
def lookup(order: str) -> dict:
    """Look an order up."""
    return {"order": order, "status": "shipped"}


def orders_agent(*orders: str) -> Agent:
    turns = [{"tool_calls": [{"name": "lookup", "arguments": {"order": o}}]} for o in orders]
    return Agent(
        name="orders",
        model={"provider": "scripted", "turns": [*turns, {"content": "all shipped"}]},
        tools=[lookup],
    )


def sql(db: str, statement: str, params: tuple = ()) -> list[tuple]:
    """Run one statement as an attacker would: a connection of its own, committed."""
    if db.startswith("postgresql"):
        with psycopg.connect(db, autocommit=True) as conn:
            cur = conn.execute(statement.replace("?", "%s"), params)
            return cur.fetchall() if cur.description else []
    with sqlite3.connect(db) as conn:
        return conn.execute(statement, params).fetchall()


def cut_last(db: str, n: int) -> None:
    """Delete the last `n` records and rewrite the head to the record before them."""
    (end,) = sql(db, "SELECT max(seq) FROM audit")[0]
    sql(db, "DELETE FROM audit WHERE seq > ?", (end - n,))
    rewrite_head(db)


def rewrite_head(db: str) -> None:
    seq, digest, count = sql(
        db, "SELECT seq, hash, (SELECT count(*) FROM audit) FROM audit ORDER BY seq DESC LIMIT 1"
    )[0]
    sql(db, "UPDATE audit_head SET seq=?, hash=?, count=?", (seq, digest, count))


def run(coroutine):
    return asyncio.run(coroutine)


async def killed_run(db: str):
    """A run halted by a kill switch: its `run_finished` is audited as `run_killed`."""
    async with Runtime(db) as rt:
        await rt.kill("agent:orders", reason="freeze", by="ops")
        result = await rt.run(orders_agent("o3"), "check")
        await rt.unkill("agent:orders", by="ops")
    return result


def audit_cli(db: str, capsys, *args: str) -> tuple[int, str]:
    code = cli_main(["audit", *args, "--db", db])
    return code, capsys.readouterr().out


async def run_orders(db: str, *orders: str) -> str:
    async with Runtime(db) as rt:
        result = await rt.run(orders_agent(*orders), "check the orders")
    assert result.status == SUCCEEDED
    return result.run_id


async def kill_and_clear(db: str) -> None:
    """Two records that no journal event stands for."""
    async with Runtime(db) as rt:
        await rt.kill("tool:lookup", reason="partner outage", by="ops")
        await rt.unkill("tool:lookup", by="ops")


def test_deleting_the_last_two_records_is_reported_as_tampering(db_url, capsys):
    run(run_orders(db_url, "o1"))
    run(kill_and_clear(db_url))
    assert audit_cli(db_url, capsys, "verify")[0] == 0
    (end,) = sql(db_url, "SELECT max(seq) FROM audit")[0]

    sql(db_url, "DELETE FROM audit WHERE seq > ?", (end - 2,))

    code, out = audit_cli(db_url, capsys, "verify")
    assert code == 1
    assert f"TAMPERED at record {end - 1}" in out
    assert f"the chain ends at record {end - 2} but its head is record {end}" in out


def test_deleting_records_and_rewriting_the_head_is_caught_by_the_journal(db_url, capsys):
    run(kill_and_clear(db_url))
    run_id = run(run_orders(db_url, "o1", "o2"))  # the chain ends with its two decisions
    assert audit_cli(db_url, capsys, "verify")[0] == 0

    cut_last(db_url, 2)

    code, out = audit_cli(db_url, capsys, "verify")
    assert code == 1
    assert f"run {run_id}'s journal holds 2 policy_decided events but the chain only 0" in out


def test_a_head_recorded_elsewhere_catches_a_consistent_truncation(db_url, capsys, tmp_path):
    run(run_orders(db_url, "o1"))
    run(kill_and_clear(db_url))
    code, line = audit_cli(db_url, capsys, "head")
    assert code == 0
    head = json.loads(line)
    kept = tmp_path / "heads.jsonl"  # e.g. a WORM bucket, appended to every night
    kept.write_text(line)

    cut_last(db_url, 2)  # records of no journal event, and the head rewritten to match

    # What the database alone can prove: nothing is amiss. The head kept elsewhere disagrees.
    assert audit_cli(db_url, capsys, "verify")[0] == 0
    for expected in (line.strip(), str(kept)):
        code, out = audit_cli(db_url, capsys, "verify", "--expect-head", expected)
        assert code == 1
        assert f"before the head recorded at record {head['seq']}" in out
    code, out = audit_cli(db_url, capsys, "verify", "--expect-head", head["hash"])
    assert code == 1 and "no record has the recorded head hash" in out


def test_a_head_recorded_elsewhere_catches_a_rewritten_record(db_url, capsys):
    run(kill_and_clear(db_url))
    _, line = audit_cli(db_url, capsys, "head")
    head = json.loads(line)
    # Rewrite the last record's reason, its hash, and the head: a consistent chain again.
    seq, ts, actor, action, subject, tenant, prev = sql(
        db_url,
        "SELECT seq, ts, actor, action, subject, tenant, prev_hash FROM audit WHERE seq=?",
        (head["seq"],),
    )[0]
    forged = AuditEntry(ts, actor, action, subject, {"reason": "routine"}, tenant)
    sql(
        db_url,
        "UPDATE audit SET data=?, hash=? WHERE seq=?",
        (json.dumps(forged.data), chain_hash(prev, forged), seq),
    )
    rewrite_head(db_url)

    assert audit_cli(db_url, capsys, "verify")[0] == 0
    code, out = audit_cli(db_url, capsys, "verify", "--expect-head", line)
    assert code == 1
    assert f"TAMPERED at record {seq}" in out and "rewritten?" in out


def test_an_expected_head_that_cannot_be_read_is_a_usage_error(sqlite_path, capsys):
    assert cli_main(["audit", "verify", "--expect-head", "not-a-head", "--db", sqlite_path]) == 2
    assert "--expect-head 'not-a-head' is not a head" in capsys.readouterr().err


def test_normal_use_stays_intact_and_the_head_is_the_chains_end(db_url, capsys):
    run(run_orders(db_url, "o1", "o2"))
    run(kill_and_clear(db_url))
    assert run(killed_run(db_url)).status == "killed"

    code, line = audit_cli(db_url, capsys, "head")
    assert code == 0
    head = json.loads(line)
    rows = sql(db_url, "SELECT seq, hash, action FROM audit ORDER BY seq")
    assert (head["seq"], head["hash"], head["count"]) == (rows[-1][0], rows[-1][1], len(rows))
    assert "run_killed" in {action for _, _, action in rows}
    code, out = audit_cli(db_url, capsys, "verify")
    assert code == 0 and f"audit trail intact: {len(rows)} records" in out

    run(run_orders(db_url, "o4"))  # the chain grows past a head recorded earlier
    assert audit_cli(db_url, capsys, "verify", "--expect-head", line)[0] == 0


def test_an_existing_database_gets_its_head_from_its_chain(db_url, capsys):
    run(run_orders(db_url, "o1"))
    run(kill_and_clear(db_url))
    sql(db_url, "DROP TABLE audit_head")  # as the previous version left it
    sql(db_url, "DROP TABLE bosun_migrations")  # which predates numbered migrations
    if not db_url.startswith("postgresql"):
        sql(db_url, "PRAGMA user_version=4")

    code, line = audit_cli(db_url, capsys, "head")  # opening the database upgrades it
    assert code == 0
    (end, count) = sql(db_url, "SELECT max(seq), count(*) FROM audit")[0]
    assert (json.loads(line)["seq"], json.loads(line)["count"]) == (end, count)

    sql(db_url, "DELETE FROM audit WHERE seq = ?", (end,))
    assert audit_cli(db_url, capsys, "verify")[0] == 1


def test_a_deleted_head_row_is_reported(db_url, capsys):
    run(kill_and_clear(db_url))
    sql(db_url, "DELETE FROM audit_head")
    code, out = audit_cli(db_url, capsys, "verify")
    assert code == 1 and "head row (table audit_head) is missing" in out


# -- SQLite: records chained after the step's commit -------------------------------------


def decided(call: str) -> PolicyDecided:
    return PolicyDecided(ts=time.time(), call_id=call, tool="lookup", verdict="allow",
                         rule="default", reason="no rule matched", policy_version="p1")  # fmt: skip


def summary(status: str = RUNNING, steps: int = 1) -> RunSummary:
    return RunSummary(status=status, steps=steps, tool_calls=steps, input_tokens=0,
                      output_tokens=0, cost=0.0)  # fmt: skip


async def test_decisions_a_running_run_has_not_chained_yet_are_not_reported_missing(
    sqlite_path,
):
    writer = SqliteStore(sqlite_path)
    await writer.open()
    try:
        await writer.create_run(*_new_run("r1"))
        await writer.append("r1", [decided("c0")], first_seq=2, owner="w1", summary=summary())
        # Another process verifies while the record waits for the writer's catch-up.
        assert sql(sqlite_path, "SELECT count(*) FROM audit WHERE subject='r1'") == [(0,)]
        reader = SqliteStore(sqlite_path)
        await reader.open()
        try:
            assert (await audit.verify(reader)).ok
            await writer.append("r1", [RunFinished(ts=time.time(), status=SUCCEEDED,
                                reason="done", output="ok")], first_seq=3, owner="w1",
                                summary=summary(SUCCEEDED))  # fmt: skip
            result = await audit.verify(reader)
            assert result.ok and result.checked["journal_events"] == 1
        finally:
            await reader.close()
    finally:
        await writer.close()


def _new_run(run_id: str, owner: str = "w1") -> tuple[RunRecord, list[RunStarted]]:
    run = RunRecord(id=run_id, agent="orders", agent_version="orders-v1", input="hi",
                    spec={"name": "orders"}, status=RUNNING, lease_owner=owner,
                    lease_expires_at=time.time() + 60)  # fmt: skip
    started = RunStarted(ts=time.time(), agent="orders", agent_version="orders-v1", input="hi")
    return run, [started]


# A worker that commits two decisions (their records wait for the catch-up), says so, and
# waits to be killed.
_DOOMED_WORKER = """
import asyncio, time
from bosun.journal.events import PolicyDecided, RunStarted
from bosun.store import RUNNING, RunRecord, RunSummary
from bosun.store.sqlite import SqliteStore

def decided(call):
    return PolicyDecided(ts=time.time(), call_id=call, tool="lookup", verdict="allow",
                         rule="default", reason="no rule matched", policy_version="p1")

async def main():
    store = SqliteStore(DB)
    await store.open()
    run = RunRecord(id="r1", agent="orders", agent_version="orders-v1", input="hi",
                    spec={"name": "orders"}, status=RUNNING, lease_owner="w1",
                    lease_expires_at=time.time() + 60)
    await store.create_run(run, [RunStarted(ts=time.time(), agent="orders",
                                            agent_version="orders-v1", input="hi")])
    for seq, call in ((2, "c0"), (3, "c1")):
        await store.append("r1", [decided(call)], first_seq=seq, owner="w1",
                           summary=RunSummary(RUNNING, seq - 1, seq - 1, 0, 0, 0.0))
    print("committed", flush=True)
    time.sleep(600)  # blocks the loop: the catch-up never runs

asyncio.run(main())
"""


@pytest.mark.slow
async def test_a_worker_taking_over_from_a_sigkilled_one_leaves_the_chain_intact(sqlite_path):
    script = f"DB = {sqlite_path!r}\n" + _DOOMED_WORKER
    doomed = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, env=dict(os.environ)
    )
    try:
        assert doomed.stdout is not None
        assert doomed.stdout.readline().strip() == b"committed"  # blocks until it is
    finally:
        doomed.kill()
        doomed.wait(30)
    store = SqliteStore(sqlite_path)
    await store.open()
    try:
        # The dead worker's two decisions are journaled, not chained: not "missing" either.
        assert (await audit.verify(store)).ok
        sql(sqlite_path, "UPDATE runs SET lease_owner='w2' WHERE id='r1'")  # its lease expired
        await store.append("r1", [decided("c2")], first_seq=4, owner="w2",
                           summary=summary(steps=3))  # fmt: skip
        await store.append("r1", [RunFinished(ts=time.time(), status=SUCCEEDED, reason="done",
                           output="ok")], first_seq=5, owner="w2",
                           summary=summary(SUCCEEDED, 3))  # fmt: skip
        result = await audit.verify(store)
        assert result.ok and result.checked["journal_events"] == 3
        head = await store.audit_head()
        assert head is not None and head.hash == result.head.hash != GENESIS
    finally:
        await store.close()
