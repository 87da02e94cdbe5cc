"""The audit chain on SQLite, and the catch-up of what a step's commit leaves for later."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Sequence

import orjson

from bosun.journal.audit import (
    AUDITED_KINDS,
    GENESIS,
    AuditEntry,
    audit_entry_for,
    needs_redaction,
    redacted,
)
from bosun.journal.emitted import cloud_event
from bosun.journal.events import ApprovalRequested
from bosun.journal.redact import Sensitivity
from bosun.store import sql
from bosun.store import triggers as triggers_sql
from bosun.store.base import (
    AuditHead,
    AuditRecord,
    RunSummary,
)
from bosun.store.rows import (
    approval_values,
    audit_head_from_row,
    audit_record_from_row,
    chain_rows,
    decode_row,
)
from bosun.store.sqlite import batch as batching
from bosun.store.sqlite.batch import (
    GOVERNANCE_KINDS,
    UPDATE_BEHIND,
    Owner,
    PendingAppend,
    Unaudited,
    totals,
)
from bosun.store.triggers import emit_values

log = logging.getLogger("bosun.store")


class SqliteAudit:
    """The hash chain, and the catch-up that chains journal events off the step's commit."""

    def _governance_rows(self, item: PendingAppend, *, tenant: str, agent: str) -> list[Unaudited]:
        """Approval rows (inserted) and audit records (returned) derived from the events."""
        conn = self.conn
        audit = []
        for event, row in zip(item.events, item.rows, strict=True):
            if event.kind not in GOVERNANCE_KINDS:
                if event.kind == "tool_finished":  # an emit goes to the outbox, same commit
                    cloud = cloud_event(event)
                    if cloud is not None:
                        conn.execute(
                            triggers_sql.INSERT_EMIT, emit_values(item.run_id, cloud, event.ts)
                        )
                continue
            if isinstance(event, ApprovalRequested):
                conn.execute(
                    sql.INSERT_APPROVAL, approval_values(event, item.run_id, tenant, agent)
                )
            entry = audit_entry_for(item.run_id, tenant, event, item.owner)
            if entry is not None:
                audit.append(Unaudited(item.run_id, row.seq, entry))
        # Wait rows; a parked run whose waits all settled already goes straight back to the
        # queue; an ended run settles its parents' waits (`sqlite/waits.py`).
        self._wait_rows(item.run_id, item.events, item.summary.status)
        return audit

    def _missed_audit(self, item: PendingAppend, owner: Owner) -> list[Unaudited]:
        """Audit records of this run's journal that are not chained yet: a worker that died
        (or lost its lease) committed the events but not, yet, their records."""
        first = item.rows[0].seq if item.rows else None
        if first is not None and first - 1 <= max(owner.audited_seq, 1):  # seq 1: run_started
            return []
        kinds = (*AUDITED_KINDS, "run_finished")
        rows = self.conn.execute(
            "SELECT seq, ts, kind, data FROM events WHERE run=? AND seq>?"
            f" AND kind IN ({','.join('?' * len(kinds))}) ORDER BY seq",
            (owner.no, owner.audited_seq, *kinds),
        ).fetchall()
        missed = []
        for seq, ts, kind, data in rows:
            event = decode_row(kind, ts, data, self._blob)
            entry = audit_entry_for(item.run_id, owner.tenant, event, item.owner)
            if entry is not None:
                missed.append(Unaudited(item.run_id, seq, entry))
        return missed

    def _insert_audit(self, entries: Sequence[AuditEntry]) -> None:
        """Extend the chain, inside the caller's transaction: first the journal's records that
        wait (those a run's `audited_seq` does not cover yet, once each), then `entries`.

        The waiting records stay in memory until the caller's transaction has committed:
        `_write_batch` and `_catch_up` drop them then; other callers leave that to
        the timer, whose next write finds them covered and drops them.
        """
        conn = self.conn
        waiting = self._unaudited
        journal: list[AuditEntry] = []
        if waiting:
            ids = list({u.run_id for u in waiting})
            covered: dict[str, int] = {}
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                covered.update(
                    conn.execute(
                        "SELECT id, audited_seq FROM runs"
                        f" WHERE id IN ({','.join('?' * len(chunk))})",
                        chunk,
                    ).fetchall()
                )
            for u in waiting:
                if u.seq > covered.get(u.run_id, u.seq):
                    journal.append(u.entry)
                    covered[u.run_id] = u.seq
            conn.executemany(
                "UPDATE runs SET audited_seq=? WHERE id=? AND audited_seq<?",
                [(seq, run_id, seq) for run_id, seq in covered.items()],
            )
        all_entries = self._redacted([*journal, *entries])
        if not all_entries:
            return
        row = conn.execute(sql.LAST_AUDIT).fetchone()
        rows, seq, prev = chain_rows(all_entries, *(row if row else (0, GENESIS)))
        conn.executemany(sql.INSERT_AUDIT, rows)
        conn.execute(sql.MOVE_HEAD, (seq, prev, len(rows), time.time()))
        self._catch_up_later()

    def _redacted(self, entries: list[AuditEntry]) -> list[AuditEntry]:
        """The records as they are chained: a call's values redacted by its run's pinned
        definition (read only for the records that hold any)."""
        runs = {e.subject for e in entries if needs_redaction(e)}
        if not runs:
            return entries
        specs: dict[str, Sensitivity] = {}
        ids = list(runs)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            for run_id, spec in self.conn.execute(
                "SELECT r.id, v.spec FROM runs r JOIN agent_versions v"
                f" ON v.version = r.agent_version WHERE r.id IN ({','.join('?' * len(chunk))})",
                chunk,
            ):
                specs[run_id] = Sensitivity.of_spec(orjson.loads(spec))
        return [redacted(e, specs.get(e.subject)) for e in entries]

    def _write_behind(self, behind: dict[str, tuple[int, RunSummary, int]], now: float) -> None:
        if behind:
            self.conn.executemany(
                UPDATE_BEHIND,
                [(*totals(s), now, seq, no, seq) for no, s, seq in behind.values()],
            )

    def _catch_up_later(self) -> None:
        if (
            self._catch_up_timer is None
            and (self._unaudited or self._behind)
            and self._conn is not None
        ):
            loop = asyncio.get_running_loop()
            self._catch_up_timer = loop.call_later(batching.CATCH_UP_DELAY, self._catch_up)

    def _catch_up(self) -> None:
        """Write the audit records and row totals still waiting, in a transaction of their own."""
        if self._catch_up_timer is not None:
            self._catch_up_timer.cancel()
            self._catch_up_timer = None
        if not (self._unaudited or self._behind) or self._conn is None:
            return
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                self._write_behind(self._behind, time.time())
                self._insert_audit(())
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            # The journal is committed; this projection of it is written with the next attempt.
            if not self._catch_up_failing:  # once, not every second of an outage
                self._catch_up_failing = True
                log.warning(
                    "could not write %d audit records yet (trying again every %gs): %s",
                    len(self._unaudited),
                    batching.CATCH_UP_DELAY,
                    exc,
                )
            self._catch_up_later()
            return
        if self._catch_up_failing:
            self._catch_up_failing = False
            log.info("audit records caught up after an outage")
        self._unaudited, self._behind = [], {}

    # -- governance: audit --------------------------------------------------

    async def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            self._insert_audit(entries)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    async def audit_head(self) -> AuditHead | None:
        self._catch_up()  # what this process committed is in the chain it reads
        row = self.conn.execute(sql.AUDIT_HEAD).fetchone()
        return audit_head_from_row(row) if row else None

    async def journal_audit_counts(self) -> dict[tuple[str, str], int]:
        self._catch_up()
        kinds = sorted(AUDITED_KINDS)
        rows = self.conn.execute(
            "SELECT r.id, CASE e.kind WHEN 'run_finished' THEN 'run_killed' ELSE e.kind END,"
            " count(*) FROM runs r JOIN events e ON e.run = r.no AND e.seq <= r.audited_seq"
            f" WHERE e.kind IN ({','.join('?' * len(kinds))}) OR (e.kind = 'run_finished'"
            " AND json_extract(CAST(e.data AS TEXT), '$.status') = 'killed') GROUP BY 1, 2",
            kinds,
        ).fetchall()
        return {(run_id, action): n for run_id, action, n in rows}

    async def audit_records(
        self, after_seq: int = 0, limit: int | None = None
    ) -> list[AuditRecord]:
        self._catch_up()  # what this process committed is in the chain it reads
        query, params = sql.AUDIT_RECORDS, [after_seq]
        if limit is not None:
            query += " LIMIT ?"
            params.append(limit)
        return [audit_record_from_row(row) for row in self.conn.execute(query, params)]
