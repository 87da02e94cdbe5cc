"""The SQLite schema, and the upgrade of databases written by earlier versions.

Layout of the journal: `events` is an append-ordered rowid table, so a group
commit of a thousand runs' events fills a few consecutive pages instead of
touching one page per run (a table clustered by run did, and each touched page
is a 4 KiB frame written to the WAL and later checkpointed). The per-run order
lives in the small `events_by_run` index, keyed by the run's integer `no`
rather than its text id for the same reason: more runs' entries share a page.

The audit chain's head (its last seq and hash, and how many records it has) is kept in
`audit_head`, moved in the transaction of every append, so records cut from the chain's
end are seen (`bosun audit verify`).
"""

from __future__ import annotations

import sqlite3
import time

from bosun.journal.audit import GENESIS

VERSION = 7  # PRAGMA user_version of a database with this layout

# Version 5: the chain's head. Created (from the chain as it is) with the table only, so a
# deleted head row stays missing and `bosun audit verify` reports it.
_AUDIT_HEAD = """
CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL,
    count INTEGER NOT NULL,
    ts REAL NOT NULL
)
"""
_FIRST_HEAD = (
    "INSERT INTO audit_head(id, seq, hash, count, ts) SELECT 1, coalesce(max(seq), 0),"
    " coalesce((SELECT hash FROM audit ORDER BY seq DESC LIMIT 1), ?), count(*), ? FROM audit"
)
# (seq, hash, records added, now): in the transaction that appended the records.
MOVE_HEAD = "UPDATE audit_head SET seq=?, hash=?, count=count+?, ts=? WHERE id=1"

SCHEMA = """
CREATE TABLE IF NOT EXISTS agent_versions (
    version TEXT PRIMARY KEY,
    agent TEXT NOT NULL,
    spec TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
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
    parent_id TEXT,  -- run trees (version 7)
    root_id TEXT,
    idempotency_key TEXT  -- unique per tenant (runs_by_key)
);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs(status, lease_expires_at);
CREATE INDEX IF NOT EXISTS runs_by_created ON runs(created_at);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    run INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    ts REAL NOT NULL,
    kind TEXT NOT NULL,
    data BLOB NOT NULL,
    blob TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS events_by_run ON events(run, seq);
CREATE TABLE IF NOT EXISTS blobs (
    hash TEXT PRIMARY KEY,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS approvals (
    id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    call_id TEXT NOT NULL,
    tenant TEXT NOT NULL,
    agent TEXT NOT NULL,
    tool TEXT NOT NULL,
    arguments TEXT NOT NULL,
    role TEXT NOT NULL,
    rule TEXT NOT NULL,
    reason TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL,
    on_expiry TEXT NOT NULL,
    escalate_to TEXT,
    decided_by TEXT,
    decided_at REAL,
    comment TEXT,
    edited_arguments TEXT,
    replaces TEXT
);
CREATE INDEX IF NOT EXISTS approvals_by_status ON approvals(status, created_at);
CREATE INDEX IF NOT EXISTS approvals_by_run ON approvals(run_id);
CREATE TABLE IF NOT EXISTS kill_switches (
    scope TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    set_by TEXT NOT NULL,
    set_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS breakers (
    key TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    opened_at REAL,
    probe_until REAL
);
CREATE TABLE IF NOT EXISTS rate_counters (
    key TEXT PRIMARY KEY,
    window_start REAL NOT NULL,
    count INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    role TEXT NOT NULL,
    name TEXT NOT NULL,
    hash TEXT NOT NULL,
    created_at REAL NOT NULL,
    revoked_at REAL,
    last_used_at REAL,
    approves TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS console_sessions (
    token_hash TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    tenant TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    data TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
"""


# Version 1 (no user_version) keyed runs by text id and clustered events by (run_id, seq).
_ADDED_COLUMNS = (
    ("api_keys", "approves", "TEXT NOT NULL DEFAULT ''"),
    ("runs", "pause_requested", "INTEGER NOT NULL DEFAULT 0"),
    ("runs", "audited_seq", "INTEGER NOT NULL DEFAULT 0"),
    ("runs", "claims", "INTEGER NOT NULL DEFAULT 0"),
    ("runs", "claimed_seq", "INTEGER NOT NULL DEFAULT 0"),
    ("runs", "parent_id", "TEXT"),
    ("runs", "root_id", "TEXT"),
    ("runs", "idempotency_key", "TEXT"),
)
# Indexes on columns added after version 1 (created once the columns exist).
INDEXES = """
CREATE INDEX IF NOT EXISTS runs_by_root ON runs(root_id);
CREATE INDEX IF NOT EXISTS runs_by_parent ON runs(parent_id);
CREATE UNIQUE INDEX IF NOT EXISTS runs_by_key ON runs(tenant, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
"""
# Before version 4 every audit record was chained in its events' transaction: a run's whole
# journal is in the chain already.
_BACKFILL = {
    "audited_seq": "UPDATE runs SET audited_seq ="
    " coalesce((SELECT max(seq) FROM events WHERE events.run = runs.no), last_seq)",
}

_RUN_COLUMNS_V1 = (
    "id, agent, agent_version, input, status, tenant, user_id, session, tags, created_at,"
    " updated_at, finished_at, steps, tool_calls, input_tokens, output_tokens, cost, reason,"
    " output, last_seq, lease_owner, lease_expires_at, cancel_requested, journal_deleted"
)


def prepare(conn: sqlite3.Connection) -> None:
    """Create the tables, upgrading a version-1 database in place (one transaction)."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > VERSION:
        raise sqlite3.DatabaseError(
            f"its layout is version {version}, newer than this Bosun (version {VERSION}); "
            "upgrade Bosun to open it"
        )
    columns = {row[1] for row in conn.execute("PRAGMA table_info(events)")}
    if "run_id" in columns:
        _upgrade_from_1(conn)
    else:
        conn.executescript(SCHEMA)
    # Version 2 had no approval roles on API keys and no pause requests on runs; version 3
    # no audit watermark; version 5 no claim counts.
    for table, column, ddl in _ADDED_COLUMNS:
        if column not in {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {ddl}")
            if column in _BACKFILL:
                conn.execute(_BACKFILL[column])
    if version < 7:  # before run trees every run was top-level: its own root
        conn.execute("UPDATE runs SET root_id = id WHERE root_id IS NULL")
    for statement in INDEXES.split(";"):
        if statement.strip():
            conn.execute(statement)
    _anchor_chain(conn)
    conn.execute(f"PRAGMA user_version={VERSION}")


def _has_head(conn: sqlite3.Connection) -> bool:
    found = "SELECT 1 FROM sqlite_master WHERE type='table' AND name='audit_head'"
    return conn.execute(found).fetchone() is not None


def _anchor_chain(conn: sqlite3.Connection) -> None:
    """Version 4 had no `audit_head`: create it with the chain's current head (one
    transaction, so two processes opening the database at once make one)."""
    if _has_head(conn):
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        if not _has_head(conn):
            conn.execute(_AUDIT_HEAD)
            conn.execute(_FIRST_HEAD, (GENESIS, time.time()))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _upgrade_from_1(conn: sqlite3.Connection) -> None:
    # The usual SQLite recipe: foreign keys off, rebuild the tables, check, commit.
    conn.execute("PRAGMA foreign_keys=OFF")
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("ALTER TABLE runs RENAME TO runs_v1")
            conn.execute("ALTER TABLE events RENAME TO events_v1")
            conn.execute("DROP INDEX IF EXISTS runs_by_status")
            conn.execute("DROP INDEX IF EXISTS runs_by_created")
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(
                f"INSERT INTO runs({_RUN_COLUMNS_V1}) SELECT {_RUN_COLUMNS_V1} FROM runs_v1"
                " ORDER BY created_at, id"
            )
            conn.execute(
                "INSERT INTO events(run, seq, ts, kind, data, blob)"
                " SELECT r.no, e.seq, e.ts, e.kind, e.data, e.blob"
                " FROM events_v1 e JOIN runs r ON r.id = e.run_id ORDER BY r.no, e.seq"
            )
            conn.execute(_BACKFILL["audited_seq"])
            conn.execute("DROP TABLE events_v1")
            conn.execute("DROP TABLE runs_v1")
            problems = conn.execute("PRAGMA foreign_key_check").fetchall()
            if problems:
                raise sqlite3.DatabaseError(f"foreign keys broken by the upgrade: {problems[:5]}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    finally:
        conn.execute("PRAGMA foreign_keys=ON")
