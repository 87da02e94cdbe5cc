"""The observe layer's queries on PostgreSQL (mixed into `PostgresStore`); the statements
the dialects share are `bosun.store.sql`'s."""

from __future__ import annotations

import contextlib

import psycopg

from bosun.store import sql
from bosun.store.observing import (
    MODEL_RESPONDED,
    Finding,
    MetricsSnapshot,
    UsageRow,
    finding_values,
    usage_from_event,
    usage_from_summary,
)
from bosun.store.rows import finding_from_row
from bosun.store.sql import pg

_ORPHANED = pg(sql.ORPHANED)
_REMOVED_USAGE = pg(sql.REMOVED_USAGE)
_INSERT_FINDING = pg(sql.INSERT_FINDING)
_FINDINGS = pg(sql.FINDINGS)


class PostgresObserve:
    """Usage rows, the metrics snapshot and watchdog findings of `PostgresStore`."""

    def _session(
        self, what: str
    ) -> contextlib.AbstractAsyncContextManager[psycopg.AsyncConnection]:
        raise NotImplementedError  # `PostgresRuns._session`

    async def usage_rows(self, since: float, until: float | None = None) -> list[UsageRow]:
        until = until if until is not None else float("inf")
        async with self._session("read usage") as conn:
            cur = await conn.execute(
                "SELECT r.id, r.agent, r.tenant, r.user_id, r.session, r.tags, e.ts, e.data,"
                " coalesce(r.root_id, r.id)"
                " FROM runs r JOIN events e ON e.run_id = r.id"
                " WHERE r.updated_at >= %s AND r.created_at < %s AND e.kind = %s"
                " AND e.ts >= %s AND e.ts < %s",
                (since, until, MODEL_RESPONDED, since, until),
            )
            rows = await cur.fetchall()
            cur = await conn.execute(_REMOVED_USAGE, (since, until))
            removed = await cur.fetchall()
        return [usage_from_event(r) for r in rows] + [usage_from_summary(r) for r in removed]

    async def metrics_snapshot(self, now: float) -> MetricsSnapshot:
        async with self._session("read metrics") as conn:
            cur = await conn.execute(sql.LIVE_RUNS)
            runs = {(agent, status): n for agent, status, n in await cur.fetchall()}
            cur = await conn.execute(_ORPHANED, (now,))
            (orphaned,) = await cur.fetchone()
            cur = await conn.execute(sql.APPROVALS_PENDING)
            pending, oldest = await cur.fetchone()
            cur = await conn.execute(sql.APPROVALS_RESOLVED)
            resolved, overridden = await cur.fetchone()
            cur = await conn.execute(sql.KILL_SCOPES)
            switches = tuple(s for (s,) in await cur.fetchall())
        return MetricsSnapshot.of(
            runs, orphaned, pending, oldest, resolved, overridden, switches, now
        )

    async def record_finding(self, finding: Finding) -> bool:
        async with self._session("record a watchdog finding") as conn:
            cur = await conn.execute(_INSERT_FINDING, finding_values(finding))
            return cur.rowcount == 1

    async def list_findings(
        self, *, run_id: str | None = None, since: float = 0.0, limit: int = 1000
    ) -> list[Finding]:
        query, params = _FINDINGS, [since]
        if run_id is not None:
            query += " AND run_id = %s"
            params.append(run_id)
        query += " ORDER BY ts, run_id LIMIT %s"
        params.append(limit)
        async with self._session("list watchdog findings") as conn:
            cur = await conn.execute(query, params)
            return [finding_from_row(row) for row in await cur.fetchall()]
