"""Numbered migrations: every earlier layout, on both backends, becomes the current one
with its data intact, and opens as a working store.

The layouts are the ones earlier Bosuns created, rebuilt from the project's history
(`layouts/make_layouts.py`): SQLite's by `PRAGMA user_version`, PostgreSQL's by the
release that changed them. Each is filled the way that release would have filled it (a
finished run with a large payload, a run waiting for an approval, an API key, a chained
audit record), then opened by today's store.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import orjson
import psycopg
import pytest

from bosun.errors import StoreError
from bosun.govern import audit
from bosun.journal.audit import GENESIS, AuditEntry
from bosun.journal.events import ModelResponded, RunFinished, RunStarted
from bosun.store import QUEUED, SUCCEEDED, RunRecord, RunSummary, rules
from bosun.store.migrate import Step, adopted, check, pending
from bosun.store.postgres import PostgresStore
from bosun.store.postgres import migrations as pg_migrations
from bosun.store.rows import chain_rows, event_rows
from bosun.store.sqlite import SqliteStore
from bosun.store.sqlite import migrations as sqlite_migrations

LAYOUTS = Path(__file__).parent / "layouts"
SQLITE_LAYOUTS = sorted(LAYOUTS.glob("sqlite_v*.sql"))
PG_LAYOUTS = sorted(LAYOUTS.glob("postgres_*.sql"), key=lambda p: int(p.stem.split("_")[1]))

SPEC = {"name": "support"}
BIG = "x" * 20_000  # stored once in `blobs`, by hash
JOURNAL = [
    RunStarted(ts=100.0, agent="support", agent_version="support-v1", input="hi"),
    ModelResponded(
        ts=101.0,
        step=0,
        model="m",
        content=BIG,
        tool_calls=0,
        input_tokens=3,
        output_tokens=1,
        cost=0.25,
        latency_ms=1.0,
    ),
    RunFinished(ts=102.0, status=SUCCEEDED, reason="the model answered", output="hello"),
]
AUDIT = [AuditEntry(99.0, "ops", "kill_switch_set", "global", {"reason": "drill"}, "default")]


def statements(path: Path) -> list[str]:
    return [s.strip() for s in path.read_text().split("\n;;\n") if s.strip()]


def rows_for(columns: set[str], values: dict[str, object]) -> tuple[str, str, list[object]]:
    """An INSERT's column list, placeholders and values, for the columns a layout has."""
    names = [c for c in values if c in columns]
    return ", ".join(names), ", ".join("?" * len(names)), [values[c] for c in names]


def seed(execute, columns) -> None:
    """Fill a layout as its release would have: `execute(sql, params)` runs one statement
    with `?` placeholders; `columns(table)` is the set of a table's columns (empty when the
    table does not exist in this layout)."""
    execute(
        "INSERT INTO agent_versions(version, agent, spec, created_at) VALUES (?, ?, ?, ?)",
        ("support-v1", "support", orjson.dumps(SPEC).decode(), 99.0),
    )
    run_columns = columns("runs")
    event_columns = columns("events")
    for no, (run_id, status, journal) in enumerate(
        (("run_done", SUCCEEDED, JOURNAL), ("run_wait", "waiting_approval", JOURNAL[:1])),
        start=1,
    ):
        values = {
            "no": no, "id": run_id, "agent": "support", "agent_version": "support-v1",
            "input": "hi", "status": status, "tenant": "acme", "tags": '{"ticket": "4821"}',
            "created_at": 100.0 + no, "updated_at": 102.0, "finished_at": 102.0 if
            status == SUCCEEDED else None, "steps": 1 if status == SUCCEEDED else 0,
            "input_tokens": 3 if status == SUCCEEDED else 0, "cost": 0.25 if
            status == SUCCEEDED else 0.0, "output": "hello" if status == SUCCEEDED else None,
            "last_seq": len(journal), "audited_seq": len(journal), "root_id": run_id,
        }  # fmt: skip
        names, marks, params = rows_for(run_columns, values)
        execute(f"INSERT INTO runs({names}) VALUES ({marks})", params)
        for row in event_rows(journal, 1):
            if row.blob is not None:
                execute(
                    "INSERT INTO blobs(hash, data) VALUES (?, ?) ON CONFLICT DO NOTHING",
                    (row.blob, row.blob_data),
                )
            key = {"run_id": run_id} if "run_id" in event_columns else {"run": no}
            names, marks, params = rows_for(
                event_columns,
                {
                    **key,
                    "seq": row.seq,
                    "ts": row.ts,
                    "kind": row.kind,
                    "data": row.data,
                    "blob": row.blob,
                },
            )
            execute(f"INSERT INTO events({names}) VALUES ({marks})", params)
    execute(
        "INSERT INTO approvals(id, run_id, call_id, tenant, agent, tool, arguments, role,"
        " rule, reason, status, created_at, on_expiry) VALUES"
        " ('ap1', 'run_wait', 'c1', 'acme', 'support', 'refund', '{}', 'approver', 'r1',"
        " 'refunds need a person', 'pending', 101.0, 'deny')",
        (),
    )
    if columns("api_keys"):
        execute(
            "INSERT INTO api_keys(id, tenant, role, name, hash, created_at)"
            " VALUES ('k1', 'acme', 'approver', 'ann', 'h', 1.0)",
            (),
        )
    chained, seq, head = chain_rows(AUDIT, 0, GENESIS)
    for row in chained:
        execute(
            "INSERT INTO audit(seq, ts, tenant, actor, action, subject, data, prev_hash, hash)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            row,
        )
    if columns("audit_head"):  # the release moved its head with every record
        execute("DELETE FROM audit_head", ())
        execute(
            "INSERT INTO audit_head(id, seq, hash, count, ts) VALUES (1, ?, ?, 1, 99.0)",
            (seq, head),
        )


async def check_store(store) -> None:
    """What a user relies on after an upgrade: every run, event, approval, key and audit
    record as it was, and a store that goes on working."""
    done = await store.get_run("run_done")
    assert done is not None
    assert (done.status, done.tenant, done.tags, done.steps, done.cost, done.output) == (
        SUCCEEDED, "acme", {"ticket": "4821"}, 1, 0.25, "hello",
    )  # fmt: skip
    assert (done.parent_id, done.root_id, done.claims) == (None, "run_done", 0)
    assert [e for _, e in await store.events("run_done")] == JOURNAL
    assert [r.id for r in await store.list_runs(tag=("ticket", "4821"))] == [
        "run_wait", "run_done",
    ]  # fmt: skip
    (approval,) = await store.list_approvals(run_id="run_wait")
    assert (approval.id, approval.status, approval.role) == ("ap1", "pending", "approver")
    key = await store.get_api_key("k1")
    assert key is None or (key.name, key.approves) == ("ann", ())
    assert (await audit.verify(store)).ok
    # The rules run on the upgraded rows: the last approval resolved requeues the run.
    await store.resolve_approval("ap1", decision="approved", by="ann")
    assert (await store.get_run("run_wait")).status == QUEUED
    # And new runs go on in the new layout.
    run = RunRecord(id="run_new", agent="support", agent_version="support-v1", input="again",
                    spec=SPEC, status="running", lease_owner="w1",
                    lease_expires_at=time.time() + 60)  # fmt: skip
    await store.create_run(run, JOURNAL[:1])
    summary = RunSummary(SUCCEEDED, 1, 0, 3, 1, 0.25)
    await store.append("run_new", JOURNAL[1:], first_seq=2, owner="w1", summary=summary)
    assert [e for _, e in await store.events("run_new")] == JOURNAL
    assert (await audit.verify(store)).ok


# -- SQLite --------------------------------------------------------------------------


def sqlite_layout(conn: sqlite3.Connection) -> dict[str, object]:
    """Tables with their columns (name, type, not null, default, key) and the indexes."""
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    layout: dict[str, object] = {
        t: sorted(tuple(r[1:]) for r in conn.execute(f"PRAGMA table_info({t})")) for t in tables
    }
    layout["indexes"] = sorted(
        r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")
    )
    return layout


def fresh_sqlite_layout(tmp_path: Path) -> dict[str, object]:
    path = tmp_path / "fresh.db"
    conn = sqlite3.connect(path, isolation_level=None)
    sqlite_migrations.migrate_database(conn, "fresh")
    return sqlite_layout(conn)


@pytest.mark.parametrize("layout", SQLITE_LAYOUTS, ids=lambda p: p.stem)
async def test_every_earlier_sqlite_layout_migrates_to_the_current_one_with_its_data(
    tmp_path, layout
):
    version = int(layout.stem.removeprefix("sqlite_v"))
    path = str(tmp_path / "old.db")
    with sqlite3.connect(path) as conn:
        for statement in statements(layout):
            conn.execute(statement)
        if version > 1:  # layout 1 had no user_version
            conn.execute(f"PRAGMA user_version={version}")

        def columns(table: str) -> set[str]:
            return {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}

        seed(conn.execute, columns)

    store = SqliteStore(path)
    await store.open()
    try:
        await check_store(store)
    finally:
        await store.close()

    conn = sqlite3.connect(path)
    steps = conn.execute("SELECT number, name FROM bosun_migrations ORDER BY number").fetchall()
    assert [n for n, _ in steps] == list(range(1, sqlite_migrations.LATEST + 1))
    assert [n for n, name in steps if name.endswith("(adopted)")] == list(adopted(version))
    assert conn.execute("PRAGMA user_version").fetchone()[0] == sqlite_migrations.LATEST
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert sqlite_layout(conn) == fresh_sqlite_layout(tmp_path)


async def test_a_new_sqlite_database_records_every_step_and_a_second_open_runs_none(tmp_path):
    path = str(tmp_path / "new.db")
    store = SqliteStore(path)
    await store.open()
    await store.close()
    conn = sqlite3.connect(path, isolation_level=None)
    names = [n for (n,) in conn.execute("SELECT name FROM bosun_migrations ORDER BY number")]
    assert names == [s.name for s in sqlite_migrations.STEPS]
    assert sqlite_migrations.migrate_database(conn, "again") == []


async def test_a_sqlite_database_with_an_unknown_migration_is_refused_untouched(tmp_path):
    path = str(tmp_path / "future.db")
    store = SqliteStore(path)
    await store.open()
    await store.close()
    future = sqlite_migrations.LATEST + 1
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO bosun_migrations VALUES (?, 'from the future', 0)", (future,))
    with pytest.raises(StoreError, match=rf"\[{future}\], newer than this Bosun.*upgrade Bosun"):
        await SqliteStore(path).open()


def test_a_step_that_fails_leaves_the_sqlite_database_as_it_was(tmp_path, monkeypatch):
    path = str(tmp_path / "v6.db")
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in statements(LAYOUTS / "sqlite_v6.sql"):
        conn.execute(statement)
    conn.execute("PRAGMA user_version=6")
    before = sqlite_layout(conn)

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE runs ADD COLUMN half_done TEXT")
        raise sqlite3.OperationalError("disk I/O error")

    steps = [*sqlite_migrations.STEPS[:7], Step(8, "breaks halfway", broken)]
    monkeypatch.setattr(sqlite_migrations, "STEPS", steps)
    with pytest.raises(sqlite3.OperationalError):
        sqlite_migrations.migrate_database(conn, "v6")
    assert sqlite_layout(conn) == before  # step 7 rolled back with the failed 8
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 6


# -- PostgreSQL ------------------------------------------------------------------------


def pg_layout(conn: psycopg.Connection) -> dict[str, object]:
    cur = conn.execute(
        "SELECT table_name, column_name, data_type, is_nullable, column_default"
        " FROM information_schema.columns WHERE table_schema = current_schema()"
        " ORDER BY 1, 2"
    )
    layout: dict[str, object] = {}
    for table, *column in cur.fetchall():
        layout.setdefault(table, []).append(tuple(column))  # type: ignore[union-attr]
    cur = conn.execute(
        "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() ORDER BY 1"
    )
    layout["indexes"] = [r[0] for r in cur.fetchall()]
    return layout


@pytest.mark.parametrize("layout", PG_LAYOUTS, ids=lambda p: p.stem)
async def test_every_earlier_postgres_layout_migrates_to_the_current_one_with_its_data(
    pg_url, layout
):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for statement in statements(layout):
            conn.execute(statement)

        def execute(sql: str, params) -> None:
            conn.execute(sql.replace("?", "%s"), params)

        def columns(table: str) -> set[str]:
            cur = conn.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = current_schema() AND table_name = %s",
                (table,),
            )
            return {r[0] for r in cur.fetchall()}

        seed(execute, columns)

    store = PostgresStore(pg_url)
    await store.open()
    try:
        await check_store(store)
    finally:
        await store.close()

    with psycopg.connect(pg_url, autocommit=True) as conn:
        cur = conn.execute("SELECT number FROM bosun_migrations ORDER BY number")
        assert [r[0] for r in cur.fetchall()] == list(range(1, pg_migrations.LATEST + 1))
        migrated = pg_layout(conn)
        for statement in ["DROP SCHEMA IF EXISTS bosun_fresh CASCADE", "CREATE SCHEMA bosun_fresh",
                          "SET search_path = bosun_fresh"]:  # fmt: skip
            conn.execute(statement)
    fresh_url = pg_url.split("?")[0] + "?options=-csearch_path%3Dbosun_fresh"
    fresh = PostgresStore(fresh_url)
    await fresh.open()
    await fresh.close()
    with psycopg.connect(fresh_url, autocommit=True) as conn:
        expected = pg_layout(conn)
        conn.execute("DROP SCHEMA bosun_fresh CASCADE")
    # Columns added by a step come last in the table, so compare them as sets per table.
    assert {t: sorted(c) for t, c in migrated.items()} == {
        t: sorted(c) for t, c in expected.items()
    }


async def test_a_postgres_database_with_an_unknown_migration_is_refused(pg_url):
    store = PostgresStore(pg_url)
    await store.open()
    await store.close()
    future = pg_migrations.LATEST + 1
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO bosun_migrations VALUES (%s, 'from the future', 0)", (future,))
    with pytest.raises(StoreError, match=r"newer than this Bosun.*upgrade Bosun"):
        await PostgresStore(pg_url).open()


# -- the mechanism and the rules, without a database -------------------------------------


def test_steps_are_numbered_without_gaps_and_pending_ones_come_in_order():
    steps = [Step(1, "a", None), Step(2, "b", None), Step(3, "c", None)]
    check(steps)
    assert [s.number for s in pending(steps, [1], what="db")] == [2, 3]
    with pytest.raises(ValueError, match=r"numbered 1\.\.2"):
        check([Step(1, "a", None), Step(3, "c", None)])
    check(sqlite_migrations.STEPS)
    check(pg_migrations.STEPS)


def test_an_escalation_has_a_stable_readable_id():
    assert rules.escalation_id("ap1") == "ap1.esc"
