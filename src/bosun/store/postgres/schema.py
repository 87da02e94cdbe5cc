"""The current PostgreSQL layout (what a new database is created with).

The tables PostgreSQL shares with SQLite are `bosun.store.ddl`'s; `runs` and `events` are
its own (runs keyed by text id, events clustered by run: many writers on many machines,
where SQLite's append-ordered pages matter less than lock-free claims). How older layouts
become this one is `migrations`.
"""

from __future__ import annotations

from bosun.store import ddl, memory_sql, router_sql
from bosun.store.postgres.artifacts import schema_statements as artifact_schema
from bosun.store.postgres.push import schema_statements as push_schema
from bosun.store.postgres.triggers import emit_schema
from bosun.store.postgres.triggers import schema_statements as trigger_schema
from bosun.store.postgres.waits import WAITS_SCHEMA

RUNS = """CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    agent TEXT NOT NULL,
    agent_version TEXT NOT NULL REFERENCES agent_versions(version),
    input TEXT NOT NULL,
    status TEXT NOT NULL,
    tenant TEXT NOT NULL,
    user_id TEXT,
    session TEXT,
    tags JSONB NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    finished_at DOUBLE PRECISION,
    steps INTEGER NOT NULL DEFAULT 0,
    tool_calls INTEGER NOT NULL DEFAULT 0,
    input_tokens BIGINT NOT NULL DEFAULT 0,
    output_tokens BIGINT NOT NULL DEFAULT 0,
    cost DOUBLE PRECISION NOT NULL DEFAULT 0,
    reason TEXT,
    output TEXT,
    last_seq INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_expires_at DOUBLE PRECISION,
    cancel_requested BOOLEAN NOT NULL DEFAULT false,
    journal_deleted BOOLEAN NOT NULL DEFAULT false,
    pause_requested BOOLEAN NOT NULL DEFAULT false,
    claims INTEGER NOT NULL DEFAULT 0,
    claimed_seq INTEGER NOT NULL DEFAULT 0,
    parent_id TEXT,
    idempotency_key TEXT,
    root_id TEXT,
    limit_steps INTEGER,
    limit_tokens BIGINT,
    limit_cost DOUBLE PRECISION,
    deadline DOUBLE PRECISION,
    reserved_steps INTEGER,
    reserved_tokens BIGINT,
    reserved_cost DOUBLE PRECISION,
    child_steps INTEGER NOT NULL DEFAULT 0,
    child_tokens BIGINT NOT NULL DEFAULT 0,
    child_cost DOUBLE PRECISION NOT NULL DEFAULT 0
)"""

EVENTS = """CREATE TABLE IF NOT EXISTS events (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    ts DOUBLE PRECISION NOT NULL,
    kind TEXT NOT NULL,
    data BYTEA NOT NULL,
    blob TEXT,
    PRIMARY KEY (run_id, seq)
)"""
EVENTS_INDEX = "CREATE INDEX IF NOT EXISTS events_by_blob ON events(blob) WHERE blob IS NOT NULL"

# (genesis hash): the chain's first head, by the database's clock.
FIRST_HEAD = ddl.FIRST_HEAD.replace("count(*), ? FROM audit", "count(*), {now} FROM audit")

# Every statement of the current layout, in order.
STATEMENTS = [
    ddl.render(ddl.MIGRATIONS, "postgres"),
    *ddl.shared_tables("postgres"),
    RUNS,
    *ddl.RUN_TREE_INDEXES,
    *ddl.RUN_INDEXES,
    EVENTS,
    EVENTS_INDEX,
    *WAITS_SCHEMA,
    *artifact_schema(),
    *trigger_schema(),
    *router_sql.ddl_statements(lambda t: ddl.render(t, "postgres")),
    *memory_sql.statements("postgres"),
    *push_schema(),
    *emit_schema(),
]
