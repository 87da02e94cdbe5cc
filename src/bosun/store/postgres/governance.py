"""Governance on PostgreSQL: approvals, kill switches, circuit breakers, rate counters, spend."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence

import psycopg

from bosun.errors import StoreError
from bosun.journal.audit import (
    AuditEntry,
)
from bosun.store.base import (
    APPROVED,
    DENIED,
    ESCALATED,
    EXPIRED,
    PENDING,
    QUEUED,
    WAITING_APPROVAL,
    ApprovalConflict,
    ApprovalRecord,
    Breaker,
    KillSwitch,
)
from bosun.store.postgres.audit import insert_audit
from bosun.store.postgres.errors import (
    DB_NOW,
)
from bosun.store.rows import (
    approval_audit,
    scope_tenant,
)

log = logging.getLogger("bosun.store")

APPROVAL_COLUMNS = (
    "id, run_id, call_id, tenant, agent, tool, arguments, role, rule, reason, status,"
    " created_at, expires_at, on_expiry, escalate_to, decided_by, decided_at, comment,"
    " edited_arguments, replaces"
)

INSERT_APPROVAL_SQL = (
    f"INSERT INTO approvals({APPROVAL_COLUMNS}) VALUES"
    " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, NULL, NULL, NULL, NULL, NULL)"
)

# A run parked for approval goes straight back to the queue once none is pending.
REQUEUE_SQL = (
    "UPDATE runs SET status=%s, updated_at=%s WHERE id=%s AND status=%s AND NOT EXISTS"
    " (SELECT 1 FROM approvals WHERE run_id=%s AND status=%s)"
)


# (key, threshold, threshold) with `now` the database clock: a failure opens the breaker at
# the threshold, or at once when it was a probe's.
BREAKER_FAILURE = (
    "INSERT INTO breakers(key, failures, opened_at, probe_until)"
    " VALUES (%s, 1, CASE WHEN 1 >= %s THEN {now} END, NULL)"
    " ON CONFLICT (key) DO UPDATE SET failures = breakers.failures + 1,"
    " opened_at = CASE WHEN breakers.failures + 1 >= %s OR breakers.probe_until IS NOT NULL"
    " THEN {now} ELSE breakers.opened_at END, probe_until = NULL"
    " RETURNING opened_at IS NOT NULL"
)
# (reset_after, key, reset_after): one probe at a time once the breaker has been open long
# enough; a probe whose caller died is given up after `reset_after`.
BREAKER_PROBE = (
    "UPDATE breakers SET probe_until = {now} + %s WHERE key = %s AND opened_at IS NOT NULL"
    " AND opened_at <= {now} - %s AND (probe_until IS NULL OR probe_until < {now})"
    " RETURNING key"
)


def requeue_params(run_id: str) -> tuple:
    return (QUEUED, time.time(), run_id, WAITING_APPROVAL, run_id, PENDING)


class PostgresGovernance:
    """Approvals, kill switches, breakers, rate counters and spend."""

    def _session(
        self, what: str
    ) -> contextlib.AbstractAsyncContextManager[psycopg.AsyncConnection]:
        raise NotImplementedError  # `PostgresRuns._session`

    # -- approvals -------------------------------------------------------

    async def get_approval(self, approval_id: str) -> ApprovalRecord | None:
        async with self._session(f"read approval {approval_id}") as conn:
            found = await select_approvals(conn, "id=%s", (approval_id,))
        return found[0] if found else None

    async def list_approvals(
        self,
        *,
        status: str | None = PENDING,
        tenant: str | None = None,
        run_id: str | None = None,
    ) -> list[ApprovalRecord]:
        where, params = ["true"], []
        for column, value in (("status", status), ("tenant", tenant), ("run_id", run_id)):
            if value is not None:
                where.append(f"{column}=%s")
                params.append(value)
        async with self._session("list approvals") as conn:
            return await select_approvals(conn, " AND ".join(where), params)

    async def resolve_approval(
        self,
        approval_id: str,
        *,
        decision: str,
        by: str,
        comment: str | None = None,
        arguments: str | None = None,
    ) -> ApprovalRecord:
        if decision not in (APPROVED, DENIED):
            raise StoreError(f"an approval is resolved as approved or denied, not {decision!r}")
        now = time.time()
        async with self._session(f"resolve approval {approval_id}") as conn:
            async with conn.transaction():
                cur = await conn.execute(
                    "UPDATE approvals SET status=%s, decided_by=%s, decided_at=%s, comment=%s,"
                    f" edited_arguments=%s WHERE id=%s AND status=%s RETURNING {APPROVAL_COLUMNS}",
                    (decision, by, now, comment, arguments, approval_id, PENDING),
                )
                row = await cur.fetchone()
                if row is not None:
                    record = ApprovalRecord(*row)
                    await conn.execute(REQUEUE_SQL, requeue_params(record.run_id))
                    await insert_audit(conn, [approval_audit(record, "approval_decided", by, now)])
                    return record
            existing = await select_approvals(conn, "id=%s", (approval_id,))
        if not existing:
            raise ApprovalConflict(f"no approval {approval_id!r}")
        old = existing[0]
        raise ApprovalConflict(
            f"approval {approval_id} is already {old.status}"
            + (f" by {old.decided_by}" if old.decided_by else "")
            + "; it cannot be resolved twice"
        )

    async def expire_approvals(self, now: float) -> list[ApprovalRecord]:
        async with self._session("expire approvals") as conn, conn.transaction():
            cur = await conn.execute(
                f"SELECT {APPROVAL_COLUMNS} FROM approvals WHERE status=%s"
                " AND expires_at IS NOT NULL AND expires_at < %s"
                " ORDER BY created_at, id FOR UPDATE SKIP LOCKED",
                (PENDING, now),
            )
            due = [ApprovalRecord(*row) for row in await cur.fetchall()]
            out: list[ApprovalRecord] = []
            audit: list[AuditEntry] = []
            for old in due:
                if old.on_expiry == "escalate" and old.escalate_to:
                    await conn.execute(
                        "UPDATE approvals SET status=%s, decided_by='expiry', decided_at=%s"
                        " WHERE id=%s",
                        (ESCALATED, now, old.id),
                    )
                    cur = await conn.execute(
                        f"INSERT INTO approvals({APPROVAL_COLUMNS}) SELECT %s, run_id, call_id,"
                        " tenant, agent, tool, arguments, %s, rule, reason, %s, %s, NULL, 'deny',"
                        " NULL, NULL, NULL, NULL, NULL, id FROM approvals WHERE id=%s"
                        f" RETURNING {APPROVAL_COLUMNS}",
                        (f"{old.id}.esc", old.escalate_to, PENDING, now, old.id),
                    )
                    new = ApprovalRecord(*await cur.fetchone())
                    audit.append(approval_audit(new, "approval_escalated", "expiry", now))
                    out.append(new)
                else:
                    cur = await conn.execute(
                        "UPDATE approvals SET status=%s, decided_by='expiry', decided_at=%s"
                        f" WHERE id=%s RETURNING {APPROVAL_COLUMNS}",
                        (EXPIRED, now, old.id),
                    )
                    expired = ApprovalRecord(*await cur.fetchone())
                    audit.append(approval_audit(expired, "approval_expired", "expiry", now))
                    await conn.execute(REQUEUE_SQL, requeue_params(old.run_id))
                    out.append(expired)
            await insert_audit(conn, audit)
        return out

    # -- kill switches, quotas, spend ------------------------------------------

    async def set_kill_switch(self, scope: str, *, reason: str, by: str) -> KillSwitch:
        now = time.time()
        async with self._session(f"set kill switch {scope}") as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO kill_switches(scope, reason, set_by, set_at) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (scope) DO UPDATE SET reason=EXCLUDED.reason,"
                " set_by=EXCLUDED.set_by, set_at=EXCLUDED.set_at",
                (scope, reason, by, now),
            )
            entry = AuditEntry(
                now, by, "kill_switch_set", scope, {"reason": reason}, scope_tenant(scope)
            )
            await insert_audit(conn, [entry])
        return KillSwitch(scope, reason, by, now)

    async def clear_kill_switch(self, scope: str, *, by: str) -> bool:
        now = time.time()
        async with self._session(f"clear kill switch {scope}") as conn, conn.transaction():
            cur = await conn.execute(
                "DELETE FROM kill_switches WHERE scope=%s RETURNING reason", (scope,)
            )
            gone = await cur.fetchone() is not None
            if gone:
                entry = AuditEntry(now, by, "kill_switch_cleared", scope, {}, scope_tenant(scope))
                await insert_audit(conn, [entry])
        return gone

    async def kill_switches(self) -> list[KillSwitch]:
        async with self._session("list kill switches") as conn:
            cur = await conn.execute(
                "SELECT scope, reason, set_by, set_at FROM kill_switches ORDER BY set_at"
            )
            return [KillSwitch(*r) for r in await cur.fetchall()]

    async def active_kill_switch(self, scopes: Sequence[str]) -> KillSwitch | None:
        async with self._session("check kill switches") as conn:
            cur = await conn.execute(
                "SELECT scope, reason, set_by, set_at FROM kill_switches WHERE scope = ANY(%s)"
                " ORDER BY set_at LIMIT 1",
                (list(scopes),),
            )
            row = await cur.fetchone()
        return KillSwitch(*row) if row else None

    async def breaker_failure(self, key: str, *, threshold: int) -> bool:
        async with self._session(f"count a failure of {key}") as conn:
            cur = await conn.execute(
                BREAKER_FAILURE.format(now=DB_NOW), (key, threshold, threshold)
            )
            (opened,) = await cur.fetchone()
        return bool(opened)

    async def breaker_success(self, key: str) -> None:
        async with self._session(f"close the breaker {key}") as conn:
            await conn.execute("DELETE FROM breakers WHERE key=%s", (key,))

    async def breaker_probe(self, key: str, *, reset_after: float) -> bool:
        async with self._session(f"probe the breaker {key}") as conn:
            cur = await conn.execute(
                BREAKER_PROBE.format(now=DB_NOW), (reset_after, key, reset_after)
            )
            if await cur.fetchone() is not None:
                return True
            cur = await conn.execute("SELECT opened_at FROM breakers WHERE key=%s", (key,))
            row = await cur.fetchone()
        return row is None or row[0] is None  # closed meanwhile

    async def breakers(self) -> list[Breaker]:
        async with self._session("read the breakers") as conn:
            cur = await conn.execute(
                "SELECT key, failures, opened_at, probe_until FROM breakers ORDER BY key"
            )
            return [Breaker(*row) for row in await cur.fetchall()]

    async def take_rate(self, key: str, *, limit: int, window_seconds: float) -> bool:
        # The window is cut by the database clock, so every process counts in the same one.
        async with self._session(f"count rate {key}") as conn:
            cur = await conn.execute(
                "INSERT INTO rate_counters(key, window_start, count)"
                f" VALUES (%s, floor({DB_NOW} / %s) * %s, 1)"
                " ON CONFLICT (key) DO UPDATE SET count = CASE WHEN"
                " rate_counters.window_start = EXCLUDED.window_start"
                " THEN rate_counters.count + 1 ELSE 1 END,"
                " window_start = EXCLUDED.window_start RETURNING count",
                (key, window_seconds, window_seconds),
            )
            (count,) = await cur.fetchone()
        return count <= limit

    async def spend_since(
        self, since: float, *, agent: str | None = None, tenant: str | None = None
    ) -> float:
        sql, params = "SELECT coalesce(sum(cost), 0) FROM runs WHERE created_at >= %s", [since]
        if agent is not None:
            sql += " AND agent=%s"
            params.append(agent)
        if tenant is not None:
            sql += " AND tenant=%s"
            params.append(tenant)
        async with self._session("sum spend") as conn:
            cur = await conn.execute(sql, params)
            (total,) = await cur.fetchone()
        return float(total)


async def select_approvals(
    conn: psycopg.AsyncConnection, where: str, params: Sequence[object]
) -> list[ApprovalRecord]:
    cur = await conn.execute(
        f"SELECT {APPROVAL_COLUMNS} FROM approvals WHERE {where} ORDER BY created_at, id", params
    )
    return [ApprovalRecord(*row) for row in await cur.fetchall()]
