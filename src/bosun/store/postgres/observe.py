"""The observe layer's queries on PostgreSQL (mixed into `PostgresStore`)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import psycopg

from bosun.store.observing import (
    FINDINGS_COLUMNS,
    MODEL_RESPONDED,
    Finding,
    MetricsSnapshot,
    UsageRow,
    usage_from_event,
    usage_from_summary,
)

FINDINGS_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS findings (
        run_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        at_seq INTEGER NOT NULL,
        detail TEXT NOT NULL,
        ts DOUBLE PRECISION NOT NULL,
        agent TEXT NOT NULL,
        tenant TEXT NOT NULL,
        PRIMARY KEY (run_id, kind, at_seq)
    )""",
    "CREATE INDEX IF NOT EXISTS findings_by_ts ON findings(ts)",
]

_TERMINAL = ["succeeded", "failed", "cancelled", "limit_exceeded", "killed"]


class PostgresObserve:
    _findings_ready: bool = False

    def _session(
        self, what: str
    ) -> contextlib.AbstractAsyncContextManager[psycopg.AsyncConnection]: ...

    @contextlib.asynccontextmanager
    async def _findings_session(self, what: str) -> AsyncIterator[psycopg.AsyncConnection]:
        async with self._session(what) as conn:
            if not self._findings_ready:
                for statement in FINDINGS_SCHEMA:
                    await conn.execute(statement)
                self._findings_ready = True
            yield conn

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
            cur = await conn.execute(
                "SELECT id, agent, tenant, user_id, session, tags, finished_at, input_tokens,"
                " output_tokens, cost, coalesce(root_id, id) FROM runs WHERE journal_deleted"
                " AND finished_at >= %s AND finished_at < %s",
                (since, until),
            )
            removed = await cur.fetchall()
        return [usage_from_event(r) for r in rows] + [usage_from_summary(r) for r in removed]

    async def metrics_snapshot(self, now: float) -> MetricsSnapshot:
        async with self._session("read metrics") as conn:
            cur = await conn.execute(
                "SELECT agent, status, count(*) FROM runs WHERE NOT (status = ANY(%s))"
                " GROUP BY agent, status",
                (_TERMINAL,),
            )
            runs = {(agent, status): int(n) for agent, status, n in await cur.fetchall()}
            cur = await conn.execute(
                "SELECT count(*) FROM runs WHERE status = 'running'"
                " AND (lease_expires_at IS NULL OR lease_expires_at < %s)",
                (now,),
            )
            (orphaned,) = await cur.fetchone()
            cur = await conn.execute(
                "SELECT count(*), min(created_at) FROM approvals WHERE status = 'pending'"
            )
            pending, oldest = await cur.fetchone()
            cur = await conn.execute(
                "SELECT count(*), coalesce(sum(CASE WHEN status = 'denied'"
                " OR edited_arguments IS NOT NULL THEN 1 ELSE 0 END), 0)"
                " FROM approvals WHERE status IN ('approved', 'denied')"
            )
            resolved, overridden = await cur.fetchone()
            cur = await conn.execute("SELECT scope FROM kill_switches")
            switches = tuple(s for (s,) in await cur.fetchall())
        return MetricsSnapshot(
            runs=runs,
            queue_depth=sum(n for (_, status), n in runs.items() if status == "queued"),
            orphaned=int(orphaned),
            approvals_pending=int(pending),
            oldest_approval_age=max(0.0, now - oldest) if oldest is not None else 0.0,
            approvals_resolved=int(resolved),
            approvals_overridden=int(overridden),
            kill_switches=switches,
        )

    async def record_finding(self, finding: Finding) -> bool:
        async with self._findings_session("record a watchdog finding") as conn:
            cur = await conn.execute(
                f"INSERT INTO findings({FINDINGS_COLUMNS}) VALUES (%s,%s,%s,%s,%s,%s,%s)"
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
        sql = f"SELECT {FINDINGS_COLUMNS} FROM findings WHERE ts >= %s"
        params: list[object] = [since]
        if run_id is not None:
            sql += " AND run_id = %s"
            params.append(run_id)
        sql += " ORDER BY ts, run_id LIMIT %s"
        params.append(limit)
        async with self._findings_session("list watchdog findings") as conn:
            cur = await conn.execute(sql, params)
            return [Finding(*row) for row in await cur.fetchall()]
