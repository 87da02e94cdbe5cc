"""Tables written once: the DDL on which SQLite and PostgreSQL agree but for type names.

A template names its types by role (`{real}` for epoch seconds and money, `{bigint}` for
counters that may pass 2^31, `{bytes}` for encoded payloads); `render` fills them in for a
dialect. The journal's own tables (`runs`, `events`) differ in layout, not only in types
(SQLite numbers runs and orders events by rowid; see `bosun.store.sqlite.schema`), so
each backend writes those itself.
"""

from __future__ import annotations

from typing import Literal

Dialect = Literal["sqlite", "postgres"]

_TYPES: dict[str, dict[str, str]] = {
    "sqlite": {"real": "REAL", "bigint": "INTEGER", "bytes": "BLOB"},
    "postgres": {"real": "DOUBLE PRECISION", "bigint": "BIGINT", "bytes": "BYTEA"},
}


def render(template: str, dialect: Dialect) -> str:
    """`template` with its type roles named as `dialect` names them."""
    try:
        return template.format(**_TYPES[dialect])
    except KeyError as exc:
        raise ValueError(f"unknown SQL dialect {dialect!r} (known: sqlite, postgres)") from exc


# Every applied migration step, by number (`bosun.store.migrate`).
MIGRATIONS = """CREATE TABLE IF NOT EXISTS bosun_migrations (
    number INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at {real} NOT NULL
)"""

AGENT_VERSIONS = """CREATE TABLE IF NOT EXISTS agent_versions (
    version TEXT PRIMARY KEY,
    agent TEXT NOT NULL,
    spec TEXT NOT NULL,
    created_at {real} NOT NULL
)"""

BLOBS = """CREATE TABLE IF NOT EXISTS blobs (
    hash TEXT PRIMARY KEY,
    data {bytes} NOT NULL
)"""

APPROVALS = """CREATE TABLE IF NOT EXISTS approvals (
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
    created_at {real} NOT NULL,
    expires_at {real},
    on_expiry TEXT NOT NULL,
    escalate_to TEXT,
    decided_by TEXT,
    decided_at {real},
    comment TEXT,
    edited_arguments TEXT,
    replaces TEXT
)"""
APPROVAL_INDEXES = (
    "CREATE INDEX IF NOT EXISTS approvals_by_status ON approvals(status, created_at)",
    "CREATE INDEX IF NOT EXISTS approvals_by_run ON approvals(run_id)",
)

KILL_SWITCHES = """CREATE TABLE IF NOT EXISTS kill_switches (
    scope TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    set_by TEXT NOT NULL,
    set_at {real} NOT NULL
)"""

BREAKERS = """CREATE TABLE IF NOT EXISTS breakers (
    key TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    opened_at {real},
    probe_until {real}
)"""

RATE_COUNTERS = """CREATE TABLE IF NOT EXISTS rate_counters (
    key TEXT PRIMARY KEY,
    window_start {real} NOT NULL,
    count INTEGER NOT NULL
)"""

# The first layout of `api_keys`; approval roles (`approves`) came with a later step.
API_KEYS_FIRST = """CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    role TEXT NOT NULL,
    name TEXT NOT NULL,
    hash TEXT NOT NULL,
    created_at {real} NOT NULL,
    revoked_at {real},
    last_used_at {real}
)"""
API_KEYS = API_KEYS_FIRST.replace(
    "    last_used_at {real}\n)",
    "    last_used_at {real},\n    approves TEXT NOT NULL DEFAULT ''\n)",
)
API_KEYS_APPROVES = "TEXT NOT NULL DEFAULT ''"  # the column's definition

CONSOLE_SESSIONS = """CREATE TABLE IF NOT EXISTS console_sessions (
    token_hash TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_at {real} NOT NULL,
    expires_at {real} NOT NULL
)"""

AUDIT = """CREATE TABLE IF NOT EXISTS audit (
    seq {bigint} PRIMARY KEY,
    ts {real} NOT NULL,
    tenant TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    data TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
)"""

# The chain's head. Created (from the chain as it is: an upgrade) with the table only, so a
# deleted head row stays missing and `bosun audit verify` reports it.
AUDIT_HEAD = """CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq {bigint} NOT NULL,
    hash TEXT NOT NULL,
    count {bigint} NOT NULL,
    ts {real} NOT NULL
)"""
# (genesis hash, now)
FIRST_HEAD = (
    "INSERT INTO audit_head(id, seq, hash, count, ts) SELECT 1, coalesce(max(seq), 0),"
    " coalesce((SELECT hash FROM audit ORDER BY seq DESC LIMIT 1), ?), count(*), ? FROM audit"
)

FINDINGS = """CREATE TABLE IF NOT EXISTS findings (
    run_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    at_seq INTEGER NOT NULL,
    detail TEXT NOT NULL,
    ts {real} NOT NULL,
    agent TEXT NOT NULL,
    tenant TEXT NOT NULL,
    PRIMARY KEY (run_id, kind, at_seq)
)"""
FINDINGS_INDEX = "CREATE INDEX IF NOT EXISTS findings_by_ts ON findings(ts)"

# Indexes of the run-tree and idempotency columns (both dialects, same text).
RUN_TREE_INDEXES = (
    "CREATE INDEX IF NOT EXISTS runs_by_root ON runs(root_id)",
    "CREATE INDEX IF NOT EXISTS runs_by_parent ON runs(parent_id)",
    "CREATE UNIQUE INDEX IF NOT EXISTS runs_by_key ON runs(tenant, idempotency_key)"
    " WHERE idempotency_key IS NOT NULL",
)
RUN_INDEXES = (
    "CREATE INDEX IF NOT EXISTS runs_by_status ON runs(status, lease_expires_at)",
    "CREATE INDEX IF NOT EXISTS runs_by_created ON runs(created_at)",
)


def shared_tables(dialect: Dialect) -> list[str]:
    """The current layout of every table the dialects share, with its indexes, in an order
    that creates each before what refers to it (the head after the chain)."""
    tables = (
        AGENT_VERSIONS, BLOBS, APPROVALS, KILL_SWITCHES, BREAKERS, RATE_COUNTERS, API_KEYS,
        CONSOLE_SESSIONS, AUDIT, AUDIT_HEAD, FINDINGS,
    )  # fmt: skip
    return [render(t, dialect) for t in tables] + [*APPROVAL_INDEXES, FINDINGS_INDEX]
