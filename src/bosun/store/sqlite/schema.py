"""The current SQLite layout (what a new database is created with).

Layout of the journal: `events` is an append-ordered rowid table, so a group
commit of a thousand runs' events fills a few consecutive pages instead of
touching one page per run (a table clustered by run did, and each touched page
is a 4 KiB frame written to the WAL and later checkpointed). The per-run order
lives in the small `events_by_run` index, keyed by the run's integer `no`
rather than its text id for the same reason: more runs' entries share a page.

The audit chain's head (its last seq and hash, and how many records it has) is kept in
`audit_head`, moved in the transaction of every append, so records cut from the chain's
end are seen (`bosun audit verify`). The tables SQLite shares with PostgreSQL are
`bosun.store.ddl`'s; how older layouts become this one is `migrations`.
"""

from __future__ import annotations

import sqlite3
import time

from bosun.journal.audit import GENESIS
from bosun.store import artifacts, ddl, memory_sql, push, router_sql, triggers
from bosun.store.sqlite import waits

RUNS = """CREATE TABLE IF NOT EXISTS runs (
    no INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    agent TEXT NOT NULL,
    agent_version TEXT NOT NULL REFERENCES agent_versions(version),
    input TEXT NOT NULL,
    status TEXT NOT NULL,
    tenant TEXT NOT NULL,
    user_id TEXT,
    session TEXT,
    tags TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    finished_at REAL,
    steps INTEGER NOT NULL DEFAULT 0,
    tool_calls INTEGER NOT NULL DEFAULT 0,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    cost REAL NOT NULL DEFAULT 0,
    reason TEXT,
    output TEXT,
    last_seq INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_expires_at REAL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    journal_deleted INTEGER NOT NULL DEFAULT 0,
    pause_requested INTEGER NOT NULL DEFAULT 0,
    audited_seq INTEGER NOT NULL DEFAULT 0,  -- the journal up to here is in the audit chain
    claims INTEGER NOT NULL DEFAULT 0,  -- claims in a row that found the journal unchanged
    claimed_seq INTEGER NOT NULL DEFAULT 0,  -- the journal's last seq at the latest claim
    parent_id TEXT,  -- run trees
    root_id TEXT,
    idempotency_key TEXT,  -- unique per tenant (runs_by_key)
    -- tree budgets (`budgets_sql`): own limits, what it holds of its parent's, what it gave
    limit_steps INTEGER,
    limit_tokens INTEGER,
    limit_cost REAL,
    deadline REAL,
    reserved_steps INTEGER,
    reserved_tokens INTEGER,
    reserved_cost REAL,
    child_steps INTEGER NOT NULL DEFAULT 0,
    child_tokens INTEGER NOT NULL DEFAULT 0,
    child_cost REAL NOT NULL DEFAULT 0
)"""

EVENTS = """CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    run INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    ts REAL NOT NULL,
    kind TEXT NOT NULL,
    data BLOB NOT NULL,
    blob TEXT
)"""
EVENTS_INDEX = "CREATE UNIQUE INDEX IF NOT EXISTS events_by_run ON events(run, seq)"

# Every statement of the current layout, in order (the chain's head is filled by `create`).
STATEMENTS = [
    ddl.render(ddl.MIGRATIONS, "sqlite"),
    *ddl.shared_tables("sqlite"),
    RUNS,
    *ddl.RUN_INDEXES,
    *ddl.RUN_TREE_INDEXES,
    EVENTS,
    EVENTS_INDEX,
    *waits.DDL_STATEMENTS,
    *artifacts.ddl_statements(lambda t: ddl.render(t, "sqlite")),
    *triggers.ddl_statements(lambda t: ddl.render(t, "sqlite")),
    *router_sql.ddl_statements(lambda t: ddl.render(t, "sqlite")),
    *memory_sql.statements("sqlite"),
    *push.ddl_statements(lambda t: ddl.render(t, "sqlite")),
    *triggers.emit_statements(lambda t: ddl.render(t, "sqlite")),
]
SCHEMA = ";\n".join(STATEMENTS) + ";\n"  # the same, as one script (tests build layouts from it)


def create(conn: sqlite3.Connection) -> None:
    """The current layout, inside the caller's transaction, with the chain's first head."""
    for statement in STATEMENTS:
        conn.execute(statement)
    conn.execute(ddl.FIRST_HEAD, (GENESIS, time.time()))
