"""Governance on PostgreSQL: approvals, kill switches, circuit breakers, rate counters, spend."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence

import psycopg

from bosun.journal.audit import (
    AuditEntry,
)
from bosun.spec.vocab import WaitKind, WaitStatus
from bosun.store import rules, sql, waits_rows
from bosun.store.base import (
    ESCALATED,
    PENDING,
    ApprovalConflict,
    ApprovalRecord,
    Breaker,
    KillSwitch,
)
from bosun.store.postgres.audit import insert_audit
from bosun.store.postgres.errors import (
    DB_NOW,
)
from bosun.store.postgres.waits import settle_in_tx
from bosun.store.rows import (
    approval_audit,
    approval_from_row,
    breaker_from_row,
    kill_switch_from_row,
    scope_tenant,
)
from bosun.store.sql import pg
from bosun.store.waits_rows import dumps

log = logging.getLogger("bosun.store")

_SELECT_APPROVALS = pg(sql.SELECT_APPROVALS)
_RESOLVE_APPROVAL = pg(sql.RESOLVE_APPROVAL)
_CLOSE_BY_EXPIRY = pg(sql.CLOSE_BY_EXPIRY)
_ESCALATE = pg(sql.ESCALATE)
_SET_KILL_SWITCH = pg(sql.SET_KILL_SWITCH)
_CLEAR_KILL_SWITCH = pg(sql.CLEAR_KILL_SWITCH)
_CLOSE_BREAKER = pg(sql.CLOSE_BREAKER)
_BREAKER_OPENED_AT = pg(sql.BREAKER_OPENED_AT)

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


_TAKE_RATE = pg(sql.TAKE_RATE.format(now=DB_NOW))


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
        where, params = sql.approval_filters(status=status, tenant=tenant, run_id=run_id)
        async with self._session("list approvals") as conn:
            return await select_approvals(conn, pg(where), params)

    async def resolve_approval(
        self,
        approval_id: str,
        *,
        decision: str,
        by: str,
        comment: str | None = None,
        arguments: str | None = None,
    ) -> ApprovalRecord:
        rules.check_decision(decision)
        now = time.time()
        async with self._session(f"resolve approval {approval_id}") as conn:
            async with conn.transaction():
                cur = await conn.execute(
                    _RESOLVE_APPROVAL,
                    (decision, by, now, comment, arguments, approval_id, PENDING),
                )
                row = await cur.fetchone()
                if row is not None:
                    record = approval_from_row(row)
                    # An approval is a wait: settled through the one wake path.
                    await settle_in_tx(conn, record.id, WaitStatus.SETTLED, dumps(decision), now)
                    await insert_audit(conn, [approval_audit(record, "approval_decided", by, now)])
                    return record
            existing = await select_approvals(conn, "id=%s", (approval_id,))
        raise ApprovalConflict.not_pending(approval_id, existing[0] if existing else None)

    async def expire_approvals(self, now: float) -> list[ApprovalRecord]:
        async with self._session("expire approvals") as conn, conn.transaction():
            cur = await conn.execute(
                f"SELECT {sql.APPROVAL_COLUMNS} FROM approvals WHERE status=%s"
                " AND expires_at IS NOT NULL AND expires_at < %s"
                " ORDER BY created_at, id FOR UPDATE SKIP LOCKED",
                (PENDING, now),
            )
            due = [approval_from_row(row) for row in await cur.fetchall()]
            out: list[ApprovalRecord] = []
            audit: list[AuditEntry] = []
            for old in due:
                outcome = rules.expiry_outcome(old)
                cur = await conn.execute(_CLOSE_BY_EXPIRY, (outcome, now, old.id))
                closed = approval_from_row(await cur.fetchone())
                if outcome == ESCALATED:
                    new_id = rules.escalation_id(old.id)
                    cur = await conn.execute(
                        _ESCALATE, (new_id, old.escalate_to, PENDING, now, old.id)
                    )
                    new = approval_from_row(await cur.fetchone())
                    await conn.execute(
                        pg(waits_rows.INSERT),
                        (
                            new.id,
                            new.run_id,
                            WaitKind.APPROVAL,
                            new.id,
                            new.call_id,
                            None,
                            None,
                            now,
                        ),
                    )  # the new approver's wait, then the old one's ends
                    await settle_in_tx(conn, old.id, WaitStatus.EXPIRED, dumps("escalated"), now)
                    audit.append(approval_audit(new, "approval_escalated", "expiry", now))
                    out.append(new)
                else:
                    audit.append(approval_audit(closed, "approval_expired", "expiry", now))
                    await settle_in_tx(conn, old.id, WaitStatus.EXPIRED, dumps("expired"), now)
                    out.append(closed)
            await insert_audit(conn, audit)
        return out

    # -- kill switches, quotas, spend ------------------------------------------

    async def set_kill_switch(self, scope: str, *, reason: str, by: str) -> KillSwitch:
        now = time.time()
        async with self._session(f"set kill switch {scope}") as conn, conn.transaction():
            await conn.execute(_SET_KILL_SWITCH, (scope, reason, by, now))
            entry = AuditEntry(
                now, by, "kill_switch_set", scope, {"reason": reason}, scope_tenant(scope)
            )
            await insert_audit(conn, [entry])
        return KillSwitch(scope, reason, by, now)

    async def clear_kill_switch(self, scope: str, *, by: str) -> bool:
        now = time.time()
        async with self._session(f"clear kill switch {scope}") as conn, conn.transaction():
            cur = await conn.execute(_CLEAR_KILL_SWITCH, (scope,))
            gone = await cur.fetchone() is not None
            if gone:
                entry = AuditEntry(now, by, "kill_switch_cleared", scope, {}, scope_tenant(scope))
                await insert_audit(conn, [entry])
        return gone

    async def kill_switches(self) -> list[KillSwitch]:
        async with self._session("list kill switches") as conn:
            cur = await conn.execute(sql.KILL_SWITCHES)
            return [kill_switch_from_row(r) for r in await cur.fetchall()]

    async def active_kill_switch(self, scopes: Sequence[str]) -> KillSwitch | None:
        async with self._session("check kill switches") as conn:
            cur = await conn.execute(
                "SELECT scope, reason, set_by, set_at FROM kill_switches WHERE scope = ANY(%s)"
                " ORDER BY set_at LIMIT 1",
                (list(scopes),),
            )
            row = await cur.fetchone()
        return kill_switch_from_row(row) if row else None

    async def breaker_failure(self, key: str, *, threshold: int) -> bool:
        async with self._session(f"count a failure of {key}") as conn:
            cur = await conn.execute(
                BREAKER_FAILURE.format(now=DB_NOW), (key, threshold, threshold)
            )
            (opened,) = await cur.fetchone()
        return bool(opened)

    async def breaker_success(self, key: str) -> None:
        async with self._session(f"close the breaker {key}") as conn:
            await conn.execute(_CLOSE_BREAKER, (key,))

    async def breaker_probe(self, key: str, *, reset_after: float) -> bool:
        async with self._session(f"probe the breaker {key}") as conn:
            cur = await conn.execute(
                BREAKER_PROBE.format(now=DB_NOW), (reset_after, key, reset_after)
            )
            if await cur.fetchone() is not None:
                return True
            cur = await conn.execute(_BREAKER_OPENED_AT, (key,))
            row = await cur.fetchone()
        return row is None or row[0] is None  # closed meanwhile

    async def breakers(self) -> list[Breaker]:
        async with self._session("read the breakers") as conn:
            cur = await conn.execute(sql.BREAKERS)
            return [breaker_from_row(row) for row in await cur.fetchall()]

    async def take_rate(self, key: str, *, limit: int, window_seconds: float) -> bool:
        # The database's clock opens and closes windows, so every process agrees on them.
        async with self._session(f"count rate {key}") as conn:
            cur = await conn.execute(_TAKE_RATE, (key, window_seconds, window_seconds))
            (count,) = await cur.fetchone()
        return count <= limit

    async def spend_since(
        self, since: float, *, agent: str | None = None, tenant: str | None = None
    ) -> float:
        query, params = "SELECT coalesce(sum(cost), 0) FROM runs WHERE created_at >= %s", [since]
        if agent is not None:
            query += " AND agent=%s"
            params.append(agent)
        if tenant is not None:
            query += " AND tenant=%s"
            params.append(tenant)
        async with self._session("sum spend") as conn:
            cur = await conn.execute(query, params)
            (total,) = await cur.fetchone()
        return float(total)


async def select_approvals(
    conn: psycopg.AsyncConnection, where: str, params: Sequence[object]
) -> list[ApprovalRecord]:
    cur = await conn.execute(_SELECT_APPROVALS.format(where=where), params)
    return [approval_from_row(row) for row in await cur.fetchall()]
