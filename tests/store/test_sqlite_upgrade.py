"""A SQLite database written by an earlier Bosun opens with its journal intact."""

from __future__ import annotations

import sqlite3
import time

import orjson
import pytest

from bosun.errors import StoreError
from bosun.journal.events import ModelResponded, RunFinished, RunStarted
from bosun.store import SUCCEEDED, RunRecord, RunSummary
from bosun.store.rows import event_rows
from bosun.store.sqlite import SqliteStore
from bosun.store.sqlite.migrations import LATEST as VERSION

# The layout of version 1 (no user_version): runs keyed by text id, events clustered by run.
V1_TABLES = """
CREATE TABLE agent_versions (
    version TEXT PRIMARY KEY, agent TEXT NOT NULL, spec TEXT NOT NULL, created_at REAL NOT NULL
);
CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    agent TEXT NOT NULL,
    agent_version TEXT NOT NULL REFERENCES agent_versions(version),
    input TEXT NOT NULL, status TEXT NOT NULL, tenant TEXT NOT NULL, user_id TEXT, session TEXT,
    tags TEXT NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL, finished_at REAL,
    steps INTEGER NOT NULL DEFAULT 0, tool_calls INTEGER NOT NULL DEFAULT 0,
    input_tokens INTEGER NOT NULL DEFAULT 0, output_tokens INTEGER NOT NULL DEFAULT 0,
    cost REAL NOT NULL DEFAULT 0, reason TEXT, output TEXT, last_seq INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT, lease_expires_at REAL, cancel_requested INTEGER NOT NULL DEFAULT 0,
    journal_deleted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX runs_by_status ON runs(status, lease_expires_at);
CREATE INDEX runs_by_created ON runs(created_at);
CREATE TABLE events (
    run_id TEXT NOT NULL, seq INTEGER NOT NULL, ts REAL NOT NULL, kind TEXT NOT NULL,
    data BLOB NOT NULL, blob TEXT, PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
"""


def write_v1_database(path: str) -> list:
    events = [
        RunStarted(ts=100.0, agent="support", agent_version="support-v1", input="hi"),
        ModelResponded(
            ts=101.0,
            step=0,
            model="m",
            content="hello",
            tool_calls=0,
            input_tokens=3,
            output_tokens=1,
            cost=0.0,
            latency_ms=1.0,
        ),
        RunFinished(ts=102.0, status=SUCCEEDED, reason="the model answered", output="hello"),
    ]
    with sqlite3.connect(path) as conn:
        conn.executescript(V1_TABLES)
        conn.execute(
            "INSERT INTO agent_versions VALUES ('support-v1', 'support', ?, 99.0)",
            (orjson.dumps({"name": "support"}).decode(),),
        )
        for run_id, created in (("run_old_b", 100.0), ("run_old_a", 50.0)):
            conn.execute(
                "INSERT INTO runs(id, agent, agent_version, input, status, tenant, tags,"
                " created_at, updated_at, last_seq, steps) VALUES"
                " (?, 'support', 'support-v1', 'hi', ?, 'default', '{}', ?, ?, 3, 1)",
                (run_id, SUCCEEDED, created, created),
            )
            conn.executemany(
                "INSERT INTO events VALUES (?,?,?,?,?,?)",
                [(run_id, r.seq, r.ts, r.kind, r.data, r.blob) for r in event_rows(events, 1)],
            )
    return events


async def test_a_version_1_database_is_upgraded_in_place_and_keeps_every_event(tmp_path):
    path = str(tmp_path / "old.db")
    written = write_v1_database(path)

    store = SqliteStore(path)
    await store.open()
    try:
        for run_id in ("run_old_a", "run_old_b"):
            assert [e for _, e in await store.events(run_id)] == written
        assert [r.id for r in await store.list_runs()] == ["run_old_b", "run_old_a"]
        # Runs from before run trees are top-level: no parent, their own root.
        old = await store.get_run("run_old_a")
        assert old is not None and (old.parent_id, old.root_id) == (None, "run_old_a")

        # New runs go on after the old ones, in the new layout.
        run = RunRecord(
            id="run_new", agent="support", agent_version="support-v1", input="again",
            spec={"name": "support"}, status="running", lease_owner="w1",
            lease_expires_at=time.time() + 60,
        )  # fmt: skip
        await store.create_run(run, written[:1])
        summary = RunSummary(status=SUCCEEDED, steps=1, tool_calls=0, input_tokens=3,
                             output_tokens=0, cost=0.0)  # fmt: skip
        await store.append("run_new", written[1:], first_seq=2, owner="w1", summary=summary)
        assert [e for _, e in await store.events("run_new")] == written
    finally:
        await store.close()

    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == VERSION
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert not {"runs_v1", "events_v1"} & tables
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        # Version 1 chained every audit record with its events: nothing of the old journals
        # waits to be chained, so resuming them chains nothing twice.
        covered = conn.execute(
            "SELECT id, audited_seq FROM runs WHERE id LIKE 'run_old_%' ORDER BY id"
        ).fetchall()
        assert covered == [("run_old_a", 3), ("run_old_b", 3)]

    again = SqliteStore(path)  # opening an upgraded database changes nothing
    await again.open()
    assert len(await again.events("run_old_a")) == 3
    await again.close()


async def test_a_database_from_a_newer_bosun_is_refused_with_what_to_do(tmp_path):
    path = str(tmp_path / "future.db")
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version={VERSION + 1}")
    store = SqliteStore(path)
    with pytest.raises(StoreError, match=r"newer than this Bosun.*upgrade Bosun"):
        await store.open()


async def test_a_version_2_database_gains_approval_roles_on_its_api_keys(tmp_path):
    from bosun.store.base import ApiKey
    from bosun.store.sqlite.schema import SCHEMA

    path = str(tmp_path / "v2.db")
    v2 = SCHEMA.replace(",\n    approves TEXT NOT NULL DEFAULT ''", "")
    assert v2 != SCHEMA
    with sqlite3.connect(path) as conn:
        conn.executescript(v2)
        conn.execute("DROP TABLE bosun_migrations")  # layout 2 predates it
        conn.execute("PRAGMA user_version=2")
        conn.execute(
            "INSERT INTO api_keys(id, tenant, role, name, hash, created_at)"
            " VALUES ('k1', 'default', 'approver', 'ann', 'h', 1.0)"
        )
    store = SqliteStore(path)
    await store.open()
    try:
        old = await store.get_api_key("k1")
        assert (old.name, old.approves) == ("ann", ())
        new = ApiKey("k2", "default", "approver", "sam", "h2", 2.0, approves=("supervisor",))
        await store.create_api_key(new)
        assert await store.get_api_key("k2") == new
    finally:
        await store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == VERSION
