"""The observe layer's queries on SQLite (mixed into `SqliteStore`); the statements the
dialects share are `bosun.store.sql`'s."""

from __future__ import annotations

import sqlite3

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


class SqliteObserve:
    """Usage rows, the metrics snapshot and watchdog findings of `SqliteStore`."""

    conn: sqlite3.Connection

    async def usage_rows(self, since: float, until: float | None = None) -> list[UsageRow]:
        until = until if until is not None else float("inf")
        conn = self.conn
        rows = conn.execute(
            "SELECT r.id, r.agent, r.tenant, r.user_id, r.session, r.tags, e.ts, e.data,"
            " coalesce(r.root_id, r.id)"
            " FROM runs r JOIN events e ON e.run = r.no"
            " WHERE r.updated_at >= ? AND r.created_at < ? AND e.kind = ?"
            " AND e.ts >= ? AND e.ts < ?",
            (since, until, MODEL_RESPONDED, since, until),
        ).fetchall()
        removed = conn.execute(sql.REMOVED_USAGE, (since, until)).fetchall()
        return [usage_from_event(r) for r in rows] + [usage_from_summary(r) for r in removed]

    async def metrics_snapshot(self, now: float) -> MetricsSnapshot:
        conn = self.conn
        runs = {(agent, status): n for agent, status, n in conn.execute(sql.LIVE_RUNS)}
        (orphaned,) = conn.execute(sql.ORPHANED, (now,)).fetchone()
        pending, oldest = conn.execute(sql.APPROVALS_PENDING).fetchone()
        resolved, overridden = conn.execute(sql.APPROVALS_RESOLVED).fetchone()
        switches = tuple(s for (s,) in conn.execute(sql.KILL_SCOPES))
        return MetricsSnapshot.of(
            runs, orphaned, pending, oldest, resolved, overridden, switches, now
        )

    async def record_finding(self, finding: Finding) -> bool:
        cur = self.conn.execute(sql.INSERT_FINDING, finding_values(finding))
        return cur.rowcount == 1

    async def list_findings(
        self, *, run_id: str | None = None, since: float = 0.0, limit: int = 1000
    ) -> list[Finding]:
        query, params = sql.FINDINGS, [since]
        if run_id is not None:
            query += " AND run_id = ?"
            params.append(run_id)
        query += " ORDER BY ts, run_id LIMIT ?"
        params.append(limit)
        return [finding_from_row(row) for row in self.conn.execute(query, params)]
