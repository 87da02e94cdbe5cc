"""The observe layer's queries on SQLite (mixed into `SqliteStore`)."""

from __future__ import annotations

import sqlite3

from bosun.store.observing import (
    FINDINGS_COLUMNS,
    MODEL_RESPONDED,
    Finding,
    MetricsSnapshot,
    UsageRow,
    usage_from_event,
    usage_from_summary,
)

FINDINGS_SCHEMA = """
CREATE TABLE IF NOT EXISTS findings (
    run_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    at_seq INTEGER NOT NULL,
    detail TEXT NOT NULL,
    ts REAL NOT NULL,
    agent TEXT NOT NULL,
    tenant TEXT NOT NULL,
    PRIMARY KEY (run_id, kind, at_seq)
);
CREATE INDEX IF NOT EXISTS findings_by_ts ON findings(ts);
"""

_TERMINAL = "('succeeded', 'failed', 'cancelled', 'limit_exceeded', 'killed')"


class SqliteObserve:
    conn: sqlite3.Connection
    _findings_ready: bool = False

    def _findings_table(self) -> sqlite3.Connection:
        conn = self.conn
        if not self._findings_ready:
            conn.executescript(FINDINGS_SCHEMA)
            self._findings_ready = True
        return conn

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
        removed = conn.execute(
            "SELECT id, agent, tenant, user_id, session, tags, finished_at, input_tokens,"
            " output_tokens, cost, coalesce(root_id, id) FROM runs WHERE journal_deleted = 1"
            " AND finished_at >= ? AND finished_at < ?",
            (since, until),
        ).fetchall()
        return [usage_from_event(r) for r in rows] + [usage_from_summary(r) for r in removed]

    async def metrics_snapshot(self, now: float) -> MetricsSnapshot:
        conn = self.conn
        runs = {
            (agent, status): n
            for agent, status, n in conn.execute(
                "SELECT agent, status, count(*) FROM runs"
                f" WHERE status NOT IN {_TERMINAL} GROUP BY agent, status"
            )
        }
        queued = sum(n for (_, status), n in runs.items() if status == "queued")
        (orphaned,) = conn.execute(
            "SELECT count(*) FROM runs WHERE status = 'running'"
            " AND (lease_expires_at IS NULL OR lease_expires_at < ?)",
            (now,),
        ).fetchone()
        pending, oldest = conn.execute(
            "SELECT count(*), min(created_at) FROM approvals WHERE status = 'pending'"
        ).fetchone()
        resolved, overridden = conn.execute(
            "SELECT count(*), coalesce(sum(CASE WHEN status = 'denied'"
            " OR edited_arguments IS NOT NULL THEN 1 ELSE 0 END), 0)"
            " FROM approvals WHERE status IN ('approved', 'denied')"
        ).fetchone()
        switches = tuple(s for (s,) in conn.execute("SELECT scope FROM kill_switches"))
        return MetricsSnapshot(
            runs=runs,
            queue_depth=queued,
            orphaned=orphaned,
            approvals_pending=pending,
            oldest_approval_age=max(0.0, now - oldest) if oldest is not None else 0.0,
            approvals_resolved=resolved,
            approvals_overridden=overridden,
            kill_switches=switches,
        )

    async def record_finding(self, finding: Finding) -> bool:
        cur = self._findings_table().execute(
            f"INSERT INTO findings({FINDINGS_COLUMNS}) VALUES (?,?,?,?,?,?,?)"
            " ON CONFLICT DO NOTHING",
            (
                finding.run_id,
                finding.kind,
                finding.detail,
                finding.at_seq,
                finding.ts,
                finding.agent,
                finding.tenant,
            ),
        )
        return cur.rowcount == 1

    async def list_findings(
        self, *, run_id: str | None = None, since: float = 0.0, limit: int = 1000
    ) -> list[Finding]:
        sql = f"SELECT {FINDINGS_COLUMNS} FROM findings WHERE ts >= ?"
        params: list[object] = [since]
        if run_id is not None:
            sql += " AND run_id = ?"
            params.append(run_id)
        sql += " ORDER BY ts, run_id LIMIT ?"
        params.append(limit)
        return [Finding(*row) for row in self._findings_table().execute(sql, params)]
