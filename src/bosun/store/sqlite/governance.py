"""Governance on SQLite: approvals, kill switches, circuit breakers, rate counters, spend.

The statements both dialects share are `bosun.store.sql`'s; the rules (when a run is
requeued, what an expired approval becomes) are `bosun.store.rules`'.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from bosun.journal.audit import AuditEntry
from bosun.spec.vocab import WaitKind, WaitStatus
from bosun.store import rules, sql, waits_rows
from bosun.store.records import (
    ESCALATED,
    PENDING,
    ApprovalConflict,
    ApprovalRecord,
    Breaker,
    KillSwitch,
)
from bosun.store.rows import (
    approval_audit,
    approval_from_row,
    breaker_from_row,
    kill_switch_from_row,
    scope_tenant,
)
from bosun.store.sqlite.batch import BREAKER_READ_EVERY, COLUMN_EXPRESSIONS
from bosun.store.waits_rows import dumps

_TAKE_RATE = sql.TAKE_RATE.format(now="?")


class SqliteGovernance:
    """Approvals, kill switches, breakers, rate counters and spend of `SqliteStore`."""

    conn: sqlite3.Connection
    _breakers_read_at: float
    _breakers_seen: tuple[Breaker, ...]

    if TYPE_CHECKING:  # provided by `SqliteAudit` and `SqliteWaits`

        def _insert_audit(self, entries: Sequence[AuditEntry]) -> None: ...

        def _settle_in_tx(
            self, wait_id: str, status: str, result: str | None, now: float
        ) -> bool: ...

    # -- approvals -------------------------------------------------------

    def _approvals(self, where: str, params: Sequence[object]) -> list[ApprovalRecord]:
        rows = self.conn.execute(sql.SELECT_APPROVALS.format(where=where), params).fetchall()
        return [approval_from_row(row) for row in rows]

    async def get_approval(self, approval_id: str) -> ApprovalRecord | None:
        found = self._approvals("id=?", (approval_id,))
        return found[0] if found else None

    async def list_approvals(
        self,
        *,
        status: str | None = PENDING,
        tenant: str | None = None,
        run_id: str | None = None,
    ) -> list[ApprovalRecord]:
        where, params = sql.approval_filters(status=status, tenant=tenant, run_id=run_id)
        return self._approvals(where, params)

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
        conn = self.conn
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute(
                sql.RESOLVE_APPROVAL, (decision, by, now, comment, arguments, approval_id, PENDING)
            ).fetchone()
            if row is None:
                conn.execute("ROLLBACK")
                existing = await self.get_approval(approval_id)
                raise ApprovalConflict.not_pending(approval_id, existing)
            record = approval_from_row(row)
            # An approval is a wait: settled through the one wake path.
            self._settle_in_tx(record.id, WaitStatus.SETTLED, dumps(decision), now)
            self._insert_audit([approval_audit(record, "approval_decided", by, now)])
            conn.execute("COMMIT")
        except ApprovalConflict:
            raise
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return record

    async def expire_approvals(self, now: float) -> list[ApprovalRecord]:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            due = self._approvals(
                "status=? AND expires_at IS NOT NULL AND expires_at < ?", (PENDING, now)
            )
            out: list[ApprovalRecord] = []
            audit: list[AuditEntry] = []
            for old in due:
                outcome = rules.expiry_outcome(old)
                closed = ApprovalRecord(
                    *conn.execute(sql.CLOSE_BY_EXPIRY, (outcome, now, old.id)).fetchone()
                )
                if outcome == ESCALATED:
                    new_id = rules.escalation_id(old.id)
                    row = conn.execute(
                        sql.ESCALATE, (new_id, old.escalate_to, PENDING, now, old.id)
                    ).fetchone()
                    new = approval_from_row(row)
                    conn.execute(
                        waits_rows.INSERT,
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
                    self._settle_in_tx(old.id, WaitStatus.EXPIRED, dumps("escalated"), now)
                    audit.append(approval_audit(new, "approval_escalated", "expiry", now))
                    out.append(new)
                else:
                    audit.append(approval_audit(closed, "approval_expired", "expiry", now))
                    self._settle_in_tx(old.id, WaitStatus.EXPIRED, dumps("expired"), now)
                    out.append(closed)
            if audit:
                self._insert_audit(audit)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return out

    # -- kill switches -------------------------------------------------------

    async def set_kill_switch(self, scope: str, *, reason: str, by: str) -> KillSwitch:
        now = time.time()
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(sql.SET_KILL_SWITCH, (scope, reason, by, now))
            entry = AuditEntry(
                now, by, "kill_switch_set", scope, {"reason": reason}, scope_tenant(scope)
            )
            self._insert_audit([entry])
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return KillSwitch(scope, reason, by, now)

    async def clear_kill_switch(self, scope: str, *, by: str) -> bool:
        now = time.time()
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            gone = conn.execute(sql.CLEAR_KILL_SWITCH, (scope,)).fetchone()
            if gone is not None:
                entry = AuditEntry(now, by, "kill_switch_cleared", scope, {}, scope_tenant(scope))
                self._insert_audit([entry])
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return gone is not None

    async def kill_switches(self) -> list[KillSwitch]:
        return list(self._kill_switches())

    def _kill_switches(self) -> tuple[KillSwitch, ...]:
        return tuple(
            kill_switch_from_row(r) for r in self.conn.execute(sql.KILL_SWITCHES).fetchall()
        )

    async def active_kill_switch(self, scopes: Sequence[str]) -> KillSwitch | None:
        marks = ",".join("?" * len(scopes))
        row = self.conn.execute(
            f"SELECT {sql.KILL_SWITCH_COLUMNS} FROM kill_switches WHERE scope IN ({marks})"
            " ORDER BY set_at LIMIT 1",
            tuple(scopes),
        ).fetchone()
        return kill_switch_from_row(row) if row else None

    # -- circuit breakers ------------------------------------------------------

    async def breaker_failure(self, key: str, *, threshold: int) -> bool:
        now = time.time()
        self._breakers_read_at = 0.0  # the next commit reads them again
        (opened,) = self.conn.execute(
            "INSERT INTO breakers(key, failures, opened_at, probe_until)"
            " VALUES (?, 1, CASE WHEN 1 >= ? THEN ? END, NULL)"
            " ON CONFLICT(key) DO UPDATE SET failures = failures + 1,"
            " opened_at = CASE WHEN failures + 1 >= ? OR probe_until IS NOT NULL THEN ?"
            " ELSE opened_at END, probe_until = NULL RETURNING opened_at IS NOT NULL",
            (key, threshold, now, threshold, now),
        ).fetchone()
        return bool(opened)

    async def breaker_success(self, key: str) -> None:
        self._breakers_read_at = 0.0
        self.conn.execute(sql.CLOSE_BREAKER, (key,))

    async def breaker_probe(self, key: str, *, reset_after: float) -> bool:
        now = time.time()
        self._breakers_read_at = 0.0
        won = self.conn.execute(
            "UPDATE breakers SET probe_until = ? WHERE key = ? AND opened_at IS NOT NULL"
            " AND opened_at <= ? AND (probe_until IS NULL OR probe_until < ?) RETURNING key",
            (now + reset_after, key, now - reset_after, now),
        ).fetchone()
        if won is not None:
            return True
        row = self.conn.execute(sql.BREAKER_OPENED_AT, (key,)).fetchone()
        return row is None or row[0] is None  # closed meanwhile

    async def breakers(self) -> list[Breaker]:
        return list(self._breakers())

    def _failing_breakers(self, now: float) -> tuple[Breaker, ...]:
        """The breakers a commit reports: read again at most every `BREAKER_READ_EVERY`
        seconds (other processes' changes show within that), at once after this process
        changed one. Reading them with every commit would cost each step a query."""
        if now - self._breakers_read_at >= BREAKER_READ_EVERY:
            self._breakers_seen = self._breakers()
            self._breakers_read_at = now
        return self._breakers_seen

    def _breakers(self) -> tuple[Breaker, ...]:
        rows = self.conn.execute(sql.BREAKERS).fetchall()
        return tuple(breaker_from_row(row) for row in rows)

    async def take_rate(self, key: str, *, limit: int, window_seconds: float) -> bool:
        count = self.conn.execute(
            _TAKE_RATE, (key, time.time(), window_seconds, window_seconds)
        ).fetchone()[0]
        return count <= limit

    async def spend_since(
        self, since: float, *, agent: str | None = None, tenant: str | None = None
    ) -> float:
        query = f"SELECT coalesce(sum({COLUMN_EXPRESSIONS['r.cost']}), 0) FROM runs r"
        query += " WHERE r.created_at >= ?"
        params: list[object] = [since]
        if agent is not None:
            query += " AND r.agent=?"
            params.append(agent)
        if tenant is not None:
            query += " AND r.tenant=?"
            params.append(tenant)
        return float(self.conn.execute(query, params).fetchone()[0])
