"""PostgreSQL store, governance half: approvals, kill switches, rate limits, spend, audit chain.

The audit chain is one sequence for the whole database, so every transaction
that extends it takes an advisory lock first (and takes it last among its
locks, so it cannot deadlock with row locks): no two writers ever chain onto
the same previous record, whichever process they run in. The same transaction
moves the chain's head (`audit_head`), so records cut from the end are seen.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence

import orjson
import psycopg

from bosun.journal.audit import (
    AUDITED_KINDS,
    GENESIS,
    AuditEntry,
    needs_redaction,
    redacted,
)
from bosun.journal.redact import Sensitivity
from bosun.store import sql
from bosun.store.base import (
    AuditHead,
    AuditRecord,
)
from bosun.store.postgres.errors import (
    DB_NOW,
)
from bosun.store.rows import audit_head_from_row, audit_record_from_row, chain_rows
from bosun.store.sql import pg

_INSERT_AUDIT = pg(sql.INSERT_AUDIT)
_AUDIT_RECORDS = pg(sql.AUDIT_RECORDS)
# The head moves by the database's clock (every process agrees on it).
_MOVE_HEAD = f"UPDATE audit_head SET seq=%s, hash=%s, count=count+%s, ts={DB_NOW} WHERE id=1"

log = logging.getLogger("bosun.store")

_AUDIT_LOCK = (
    "SELECT pg_advisory_xact_lock(hashtext('bosun.audit:' || coalesce(current_schema(), '')))"
)


async def insert_audit(conn: psycopg.AsyncConnection, entries: Sequence[AuditEntry]) -> None:
    """Extend the hash chain, inside the caller's transaction; call it last in that transaction."""
    if not entries:
        return
    entries = await _redacted(conn, entries)
    await conn.execute(_AUDIT_LOCK)
    cur = await conn.execute(sql.LAST_AUDIT)
    row = await cur.fetchone()
    rows, seq, prev = chain_rows(entries, *(row if row else (0, GENESIS)))
    async with conn.cursor() as c:
        await c.executemany(_INSERT_AUDIT, rows)
        await c.execute(_MOVE_HEAD, (seq, prev, len(rows)))


async def _redacted(
    conn: psycopg.AsyncConnection, entries: Sequence[AuditEntry]
) -> Sequence[AuditEntry]:
    """The records as they are chained: a call's values redacted by its run's pinned
    definition (read only for the records that hold any)."""
    runs = list({e.subject for e in entries if needs_redaction(e)})
    if not runs:
        return entries
    cur = await conn.execute(
        "SELECT r.id, v.spec FROM runs r JOIN agent_versions v ON v.version = r.agent_version"
        " WHERE r.id = ANY(%s)",
        (runs,),
    )
    specs = {
        run_id: Sensitivity.of_spec(orjson.loads(spec)) for run_id, spec in await cur.fetchall()
    }
    return [redacted(e, specs.get(e.subject)) for e in entries]


class PostgresAudit:
    """The audit chain's reads and appends."""

    def _session(
        self, what: str
    ) -> contextlib.AbstractAsyncContextManager[psycopg.AsyncConnection]:
        raise NotImplementedError  # `PostgresRuns._session`

    # -- audit -------------------------------------------------------------

    async def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        async with self._session("append audit records") as conn, conn.transaction():
            await insert_audit(conn, entries)

    async def audit_head(self) -> AuditHead | None:
        async with self._session("read the audit chain's head") as conn:
            cur = await conn.execute(sql.AUDIT_HEAD)
            row = await cur.fetchone()
        return audit_head_from_row(row) if row else None

    async def journal_audit_counts(self) -> dict[tuple[str, str], int]:
        # Every journal event's record is chained in the events' own transaction.
        async with self._session("count the journal's governance events") as conn:
            cur = await conn.execute(
                "SELECT run_id, CASE kind WHEN 'run_finished' THEN 'run_killed' ELSE kind END,"
                " count(*) FROM events WHERE kind = ANY(%s) OR (kind = 'run_finished'"
                " AND convert_from(data, 'UTF8')::jsonb->>'status' = 'killed') GROUP BY 1, 2",
                (sorted(AUDITED_KINDS),),
            )
            rows = await cur.fetchall()
        return {(run_id, action): n for run_id, action, n in rows}

    async def audit_records(
        self, after_seq: int = 0, limit: int | None = None
    ) -> list[AuditRecord]:
        query, params = _AUDIT_RECORDS, [after_seq]
        if limit is not None:
            query += " LIMIT %s"
            params.append(limit)
        async with self._session("read the audit chain") as conn:
            cur = await conn.execute(query, params)
            rows = await cur.fetchall()
        return [audit_record_from_row(row) for row in rows]
