"""The SQLite layout's history as numbered steps, and the runner (`migrate`).

Numbers 1..8 are the layouts earlier Bosuns marked with `PRAGMA user_version`, so a database
from before `bosun_migrations` is adopted at its version (see `bosun.store.migrate`). Each
step also copes with a database that has part of it already (a column added by hand, a
table created by a later Bosun's `IF NOT EXISTS`): it adds only what is missing.
"""

from __future__ import annotations

import sqlite3
import time

from bosun.journal.audit import GENESIS
from bosun.store import (
    artifacts,
    budgets_sql,
    ddl,
    memory_sql,
    migrate,
    push,
    router_sql,
    triggers,
    waits_rows,
)
from bosun.store.migrate import Step
from bosun.store.sqlite import schema, waits


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    found = "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?"
    return conn.execute(found, (name,)).fetchone() is not None


def _add_column(conn: sqlite3.Connection, table: str, column: str, definition: str) -> bool:
    """Add `column` unless `table` has it; True if it was added."""
    if column in _columns(conn, table):
        return False
    conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
    return True


# Layout 2 of `runs` (numbered by `no`), before any later column.
_RUNS_2 = schema.RUNS.split("    pause_requested")[0].rstrip().rstrip(",") + "\n)"
_RUN_COLUMNS_1 = (
    "id, agent, agent_version, input, status, tenant, user_id, session, tags, created_at,"
    " updated_at, finished_at, steps, tool_calls, input_tokens, output_tokens, cost, reason,"
    " output, last_seq, lease_owner, lease_expires_at, cancel_requested, journal_deleted"
)
# Before layout 4 every audit record was chained in its events' transaction: a run's whole
# journal is in the chain already.
_ALL_AUDITED = (
    "UPDATE runs SET audited_seq ="
    " coalesce((SELECT max(seq) FROM events WHERE events.run = runs.no), last_seq)"
)


def _append_ordered_journal(conn: sqlite3.Connection) -> None:
    """Layout 1 keyed runs by text id and clustered events by (run_id, seq): rebuild both
    (the usual SQLite recipe; the runner has turned foreign keys off)."""
    if "run_id" not in _columns(conn, "events"):
        return
    conn.execute("ALTER TABLE runs RENAME TO runs_v1")
    conn.execute("ALTER TABLE events RENAME TO events_v1")
    conn.execute("DROP INDEX IF EXISTS runs_by_status")
    conn.execute("DROP INDEX IF EXISTS runs_by_created")
    conn.execute(_RUNS_2)
    for statement in ddl.RUN_INDEXES:
        conn.execute(statement)
    conn.execute(schema.EVENTS)
    conn.execute(schema.EVENTS_INDEX)
    conn.execute(
        f"INSERT INTO runs({_RUN_COLUMNS_1}) SELECT {_RUN_COLUMNS_1} FROM runs_v1"
        " ORDER BY created_at, id"
    )
    conn.execute(
        "INSERT INTO events(run, seq, ts, kind, data, blob)"
        " SELECT r.no, e.seq, e.ts, e.kind, e.data, e.blob"
        " FROM events_v1 e JOIN runs r ON r.id = e.run_id ORDER BY r.no, e.seq"
    )
    conn.execute("DROP TABLE events_v1")
    conn.execute("DROP TABLE runs_v1")
    # Layout 1's other tables (governance, keys, audit) as layout 2 had them, where missing.
    for template in (
        ddl.BLOBS, ddl.APPROVALS, ddl.KILL_SWITCHES, ddl.RATE_COUNTERS, ddl.API_KEYS_FIRST,
        ddl.CONSOLE_SESSIONS, ddl.AUDIT,
    ):  # fmt: skip
        conn.execute(ddl.render(template, "sqlite"))
    for statement in ddl.APPROVAL_INDEXES:
        conn.execute(statement)


def _roles_and_pauses(conn: sqlite3.Connection) -> None:
    _add_column(conn, "api_keys", "approves", ddl.API_KEYS_APPROVES)
    _add_column(conn, "runs", "pause_requested", "INTEGER NOT NULL DEFAULT 0")


def _audit_watermark(conn: sqlite3.Connection) -> None:
    if _add_column(conn, "runs", "audited_seq", "INTEGER NOT NULL DEFAULT 0"):
        conn.execute(_ALL_AUDITED)


def _audit_head(conn: sqlite3.Connection) -> None:
    """The chain's head, from the chain as it is."""
    if not _has_table(conn, "audit_head"):
        conn.execute(ddl.render(ddl.AUDIT_HEAD, "sqlite"))
        conn.execute(ddl.FIRST_HEAD, (GENESIS, time.time()))


def _claim_counts(conn: sqlite3.Connection) -> None:
    _add_column(conn, "runs", "claims", "INTEGER NOT NULL DEFAULT 0")
    _add_column(conn, "runs", "claimed_seq", "INTEGER NOT NULL DEFAULT 0")


def _run_trees(conn: sqlite3.Connection) -> None:
    """Parents, roots and idempotency keys; before them every run was its own root."""
    for column in ("parent_id", "root_id", "idempotency_key"):
        _add_column(conn, "runs", column, "TEXT")
    conn.execute("UPDATE runs SET root_id = id WHERE root_id IS NULL")
    for statement in ddl.RUN_TREE_INDEXES:
        conn.execute(statement)


def _breakers_and_findings(conn: sqlite3.Connection) -> None:
    """Tables earlier layouts created when first used (findings) or added without a new
    number (breakers, in layout 6): created here if missing."""
    conn.execute(ddl.render(ddl.BREAKERS, "sqlite"))
    conn.execute(ddl.render(ddl.FINDINGS, "sqlite"))
    conn.execute(ddl.FINDINGS_INDEX)


def _tree_budgets(conn: sqlite3.Connection) -> None:
    """Run-tree budgets: limits, reservations and children's spend on every run."""
    for table, column, definition in budgets_sql.SQLITE_COLUMNS:
        _add_column(conn, table, column, definition)


def _durable_waits(conn: sqlite3.Connection) -> None:
    """The waits and signals tables; approvals pending before them get their wait rows."""
    for statement in waits.DDL_STATEMENTS:
        conn.execute(statement)
    conn.execute(waits_rows.WAITS_FOR_PENDING_APPROVALS)


def _artifacts(conn: sqlite3.Connection) -> None:
    """Artifacts (bytes kept by reference) and the runs that use them."""
    for statement in artifacts.ddl_statements(lambda t: ddl.render(t, "sqlite")):
        conn.execute(statement)


def _triggers(conn: sqlite3.Connection) -> None:
    """Triggers' counters, pause flags, schedules' ticks and the deliveries seen."""
    for statement in triggers.ddl_statements(lambda t: ddl.render(t, "sqlite")):
        conn.execute(statement)


def _router(conn: sqlite3.Connection) -> None:
    """The learning router's shared state and the rewards it learns from."""
    for statement in router_sql.ddl_statements(lambda t: ddl.render(t, "sqlite")):
        conn.execute(statement)


def _memory(conn: sqlite3.Connection) -> None:
    """Session marks, long-term facts, their FTS5 index and embeddings (`bosun.memory`)."""
    for statement in memory_sql.statements("sqlite"):
        conn.execute(statement)


def _a2a_push(conn: sqlite3.Connection) -> None:
    """A2A push-notification configs and their delivery outbox."""
    for statement in push.ddl_statements(lambda t: ddl.render(t, "sqlite")):
        conn.execute(statement)


def _emits(conn: sqlite3.Connection) -> None:
    """The outbox of events from runs, written in the commit of each emit."""
    for statement in triggers.emit_statements(lambda t: ddl.render(t, "sqlite")):
        conn.execute(statement)


STEPS: list[Step] = [
    Step(1, "first layout: runs keyed by id, events clustered by run", None),
    Step(2, "append-ordered journal, runs numbered", _append_ordered_journal),
    Step(3, "approval roles on API keys, pause requests", _roles_and_pauses),
    Step(4, "audit watermark per run (audited_seq)", _audit_watermark),
    Step(5, "audit chain head", _audit_head),
    Step(6, "claim counts", _claim_counts),
    Step(7, "run trees and idempotency keys", _run_trees),
    Step(8, "durable waits and signals", _durable_waits),
    Step(9, "breakers and findings tables", _breakers_and_findings),
    Step(10, "run-tree budgets", _tree_budgets),
    Step(11, "artifacts by reference", _artifacts),
    Step(12, "triggers and their deliveries", _triggers),
    Step(13, "router state and feedback", _router),
    Step(14, "memory: session marks, facts, their indexes", _memory),
    Step(15, "a2a push configs and deliveries", _a2a_push),
    Step(16, "the outbox of events from runs", _emits),
]
migrate.check(STEPS)
LATEST = migrate.latest(STEPS)


def _applied(conn: sqlite3.Connection) -> list[int] | None:
    """The steps recorded, or None when nothing is (a new database, or one from before
    `bosun_migrations`)."""
    if not _has_table(conn, "bosun_migrations"):
        return None
    numbers = [n for (n,) in conn.execute(migrate.APPLIED)]
    return numbers or None


def migrate_database(conn: sqlite3.Connection, what: str) -> list[int]:
    """Bring the database to the current layout; the numbers of the steps it ran.

    Nothing to do (the usual open) costs two reads and takes no write lock."""
    applied = _applied(conn)
    if applied is not None and applied[-1] == LATEST and len(applied) == LATEST:
        return []
    conn.execute("PRAGMA foreign_keys=OFF")  # cannot change inside a transaction
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            ran = _migrate_locked(conn, what)
            problems = conn.execute("PRAGMA foreign_key_check").fetchall()
            if problems:
                raise sqlite3.DatabaseError(f"foreign keys broken by migrating: {problems[:5]}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    finally:
        conn.execute("PRAGMA foreign_keys=ON")
    return ran


def _migrate_locked(conn: sqlite3.Connection, what: str) -> list[int]:
    """Under the write lock: read the state again (another process may have migrated)."""
    now = time.time()
    applied = _applied(conn)
    if applied is None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == 0 and not _has_table(conn, "runs"):  # a new database
            migrate.pending(STEPS, (), what=what)
            schema.create(conn)
            conn.executemany(migrate.RECORD, [(s.number, s.name, now) for s in STEPS])
            conn.execute(f"PRAGMA user_version={LATEST}")
            return []
        conn.execute(ddl.render(ddl.MIGRATIONS, "sqlite"))
        applied = list(migrate.adopted(max(version, 1)))  # tables and no version: layout 1
        todo = migrate.pending(STEPS, applied, what=what)
        conn.executemany(
            migrate.RECORD, [(s.number, s.name + " (adopted)", now) for s in STEPS[: len(applied)]]
        )
    else:
        todo = migrate.pending(STEPS, applied, what=what)
    for step in todo:
        if step.apply is not None:
            step.apply(conn)
        conn.execute(migrate.RECORD, (step.number, step.name, time.time()))
    # Kept for older tools that read it (and older Bosuns, which refuse a newer layout).
    conn.execute(f"PRAGMA user_version={LATEST}")
    return [s.number for s in todo]
