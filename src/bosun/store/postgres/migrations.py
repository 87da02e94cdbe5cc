"""The PostgreSQL layout's history as numbered steps, and the runner (`migrate_database`).

PostgreSQL databases from before `bosun_migrations` kept no layout marker: each change was
an idempotent statement run at every open (`ADD COLUMN IF NOT EXISTS`). These steps are
those statements, numbered, so adopting such a database runs them all (each a no-op where
it is done) and records them; from then on only new steps run. See `bosun.store.migrate`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import psycopg

from bosun.journal.audit import GENESIS
from bosun.store import budgets_sql, ddl, memory_sql, migrate, router_sql
from bosun.store.migrate import Step
from bosun.store.postgres import schema
from bosun.store.postgres.artifacts import schema_statements as artifact_schema
from bosun.store.postgres.errors import DB_NOW, SCHEMA_LOCK
from bosun.store.postgres.push import schema_statements as push_schema
from bosun.store.postgres.triggers import emit_schema
from bosun.store.postgres.triggers import schema_statements as trigger_schema
from bosun.store.postgres.waits import WAITS_SCHEMA
from bosun.store.sql import pg

# The first layout of `runs`, before any later column.
_RUNS_1 = schema.RUNS.split("    pause_requested")[0].rstrip().rstrip(",") + "\n)"


def _pg(template: str) -> str:
    return ddl.render(template, "postgres")


def _statements(*statements: str) -> Step:
    """A step that runs idempotent statements in order (its number is set by `_numbered`)."""

    async def apply(conn: psycopg.AsyncConnection) -> None:
        for statement in statements:
            await conn.execute(statement)

    return Step(0, "", apply)


_FIRST = (
    _pg(ddl.AGENT_VERSIONS),
    _RUNS_1,
    *ddl.RUN_INDEXES,
    schema.EVENTS,
    schema.EVENTS_INDEX,
    _pg(ddl.BLOBS),
    _pg(ddl.APPROVALS),
    *ddl.APPROVAL_INDEXES,
    _pg(ddl.KILL_SWITCHES),
    _pg(ddl.RATE_COUNTERS),
    _pg(ddl.AUDIT),
    _pg(ddl.API_KEYS_FIRST),
    _pg(ddl.CONSOLE_SESSIONS),
)
_AUDIT_HEAD = f"""DO $$ BEGIN
    IF to_regclass('audit_head') IS NULL THEN
        {_pg(ddl.AUDIT_HEAD)};
        {schema.FIRST_HEAD.replace("?", f"'{GENESIS}'").format(now=DB_NOW)};
    END IF;
END $$"""
_ROOTS = """DO $$ BEGIN
    ALTER TABLE runs ADD COLUMN root_id TEXT;
    UPDATE runs SET root_id = id;
EXCEPTION WHEN duplicate_column THEN NULL; END $$"""

_HISTORY: list[tuple[str, Step]] = [
    ("first layout", _statements(*_FIRST)),
    (
        "pause requests",
        _statements(
            "ALTER TABLE runs ADD COLUMN IF NOT EXISTS pause_requested"
            " BOOLEAN NOT NULL DEFAULT false"
        ),
    ),
    (
        "approval roles on API keys",
        _statements(
            f"ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS approves {ddl.API_KEYS_APPROVES}"
        ),
    ),
    (
        "claim counts",
        _statements(
            "ALTER TABLE runs ADD COLUMN IF NOT EXISTS claims INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE runs ADD COLUMN IF NOT EXISTS claimed_seq INTEGER NOT NULL DEFAULT 0",
        ),
    ),
    ("circuit breakers", _statements(_pg(ddl.BREAKERS))),
    ("audit chain head", _statements(_AUDIT_HEAD)),
    (
        "run trees and idempotency keys",
        _statements(
            "ALTER TABLE runs ADD COLUMN IF NOT EXISTS parent_id TEXT",
            "ALTER TABLE runs ADD COLUMN IF NOT EXISTS idempotency_key TEXT",
            _ROOTS,
            *ddl.RUN_TREE_INDEXES,
        ),
    ),
    ("watchdog findings", _statements(_pg(ddl.FINDINGS), ddl.FINDINGS_INDEX)),
    ("run-tree budgets", _statements(*budgets_sql.POSTGRES_SCHEMA)),
    ("durable waits and signals", _statements(*WAITS_SCHEMA)),
    ("artifacts by reference", _statements(*artifact_schema())),
    ("triggers and their deliveries", _statements(*trigger_schema())),
    ("router state and feedback", _statements(*router_sql.ddl_statements(_pg))),
    (
        "memory: session marks, facts, their indexes",
        _statements(*memory_sql.statements("postgres")),
    ),
    ("a2a push configs and deliveries", _statements(*push_schema())),
    ("the outbox of events from runs", _statements(*emit_schema())),
]
STEPS: list[Step] = [
    Step(number, name, step.apply) for number, (name, step) in enumerate(_HISTORY, start=1)
]
migrate.check(STEPS)
LATEST = migrate.latest(STEPS)

_RECORD = pg(migrate.RECORD) + " ON CONFLICT (number) DO NOTHING"


# Read from pg_class with the statement's snapshot, not through the catalog cache (which an
# advisory lock does not refresh): a store that waited for another's migration sees it.
_TABLE_EXISTS = (
    "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n"
    " ON n.oid = c.relnamespace WHERE c.relname = %s AND n.nspname = current_schema())"
)


async def _exists(conn: psycopg.AsyncConnection, table: str) -> bool:
    cur = await conn.execute(_TABLE_EXISTS, (table,))
    (exists,) = await cur.fetchone()
    return bool(exists)


async def _applied(conn: psycopg.AsyncConnection) -> list[int] | None:
    if not await _exists(conn, "bosun_migrations"):
        return None
    cur = await conn.execute(migrate.APPLIED)
    return [n for (n,) in await cur.fetchall()] or None


async def migrate_database(conn: psycopg.AsyncConnection, what: str) -> list[int]:
    """Bring the database (its current schema) to the current layout, in one transaction
    under the schema's advisory lock; the numbers of the steps it ran."""
    applied = await _applied(conn)
    if applied is not None and len(applied) == LATEST and applied[-1] == LATEST:
        return []
    async with conn.transaction():
        await conn.execute(SCHEMA_LOCK)
        return await _migrate_locked(conn, what)


async def _migrate_locked(conn: psycopg.AsyncConnection, what: str) -> list[int]:
    now = time.time()
    applied = await _applied(conn)
    todo: Sequence[Step]
    if applied is None:
        if not await _exists(conn, "runs"):
            for statement in schema.STATEMENTS:
                await conn.execute(statement)
            await conn.execute(pg(schema.FIRST_HEAD).format(now=DB_NOW), (GENESIS,))
            await _record(conn, STEPS, now)
            return []
        await conn.execute(_pg(ddl.MIGRATIONS))
        todo = STEPS  # no marker: every step, each idempotent
    else:
        todo = migrate.pending(STEPS, applied, what=what)
    for step in todo:
        if step.apply is not None:
            await step.apply(conn)
    await _record(conn, todo, now)
    return [s.number for s in todo]


async def _record(conn: psycopg.AsyncConnection, steps: Sequence[Step], now: float) -> None:
    async with conn.cursor() as cur:
        await cur.executemany(_RECORD, [(s.number, s.name, now) for s in steps])
