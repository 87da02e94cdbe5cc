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
    chain_hash,
    needs_redaction,
    redacted,
)
from bosun.journal.redact import Sensitivity
from bosun.store.base import (
    AuditHead,
    AuditRecord,
)
from bosun.store.postgres.errors import (
    DB_NOW,
)

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
    cur = await conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
    row = await cur.fetchone()
    seq, prev = (row[0], row[1]) if row else (0, GENESIS)
    params = []
    for entry in entries:
        seq += 1
        digest = chain_hash(prev, entry)
        params.append(
            (
                seq,
                entry.ts,
                entry.tenant,
                entry.actor,
                entry.action,
                entry.subject,
                orjson.dumps(entry.data, option=orjson.OPT_NON_STR_KEYS).decode(),
                prev,
                digest,
            )
        )
        prev = digest
    async with conn.cursor() as c:
        await c.executemany(
            "INSERT INTO audit(seq, ts, tenant, actor, action, subject, data, prev_hash, hash)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            params,
        )
        await c.execute(
            f"UPDATE audit_head SET seq=%s, hash=%s, count=count+%s, ts={DB_NOW} WHERE id=1",
            (seq, prev, len(params)),
        )


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
            cur = await conn.execute("SELECT seq, hash, count, ts FROM audit_head")
            row = await cur.fetchone()
        return AuditHead(*row) if row else None

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
        sql = (
            "SELECT seq, ts, actor, action, subject, data, tenant, prev_hash, hash FROM audit"
            " WHERE seq > %s ORDER BY seq"
        )
        params: list[object] = [after_seq]
        if limit is not None:
            sql += " LIMIT %s"
            params.append(limit)
        async with self._session("read the audit chain") as conn:
            cur = await conn.execute(sql, params)
            rows = await cur.fetchall()
        return [
            AuditRecord(
                seq, AuditEntry(ts, actor, action, subject, orjson.loads(data), tenant), prev, h
            )
            for seq, ts, actor, action, subject, data, tenant, prev, h in rows
        ]
