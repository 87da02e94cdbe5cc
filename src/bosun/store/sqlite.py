"""Embedded SQLite store: WAL mode, group commit.

Every call runs on the event loop's thread: a WAL commit with
`synchronous=NORMAL` takes tens of microseconds, far less than a thread hop.
`synchronous=NORMAL` in WAL mode survives the process being killed at any
point (the OS holds the written pages); only a power loss can drop the last
commits, as with the peers' default settings.

Group commit: `append` calls made in the same event-loop tick are written in
one transaction, so a thousand concurrent runs share one commit.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from bosun.errors import LeaseLost, StoreError
from bosun.journal.audit import (
    GENESIS,
    AuditEntry,
    audit_entry_for,
    chain_hash,
    version_registered,
)
from bosun.journal.events import ApprovalRequested, Event
from bosun.store.base import (
    APPROVED,
    DENIED,
    ESCALATED,
    EXPIRED,
    PENDING,
    QUEUED,
    RUNNING,
    TERMINAL_STATUSES,
    WAITING_APPROVAL,
    ApiKey,
    AppendResult,
    ApprovalConflict,
    ApprovalRecord,
    AuditRecord,
    ConsoleSession,
    GcReport,
    KillSwitch,
    RunRecord,
    RunSummary,
    Store,
)
from bosun.store.rows import (
    RUN_COLUMNS,
    EventRow,
    approval_audit,
    decode_row,
    event_rows,
    run_from_row,
    scope_tenant,
)
from bosun.store.sqlite_observe import SqliteObserve

SCHEMA = """
CREATE TABLE IF NOT EXISTS agent_versions (
    version TEXT PRIMARY KEY,
    agent TEXT NOT NULL,
    spec TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    agent TEXT NOT NULL,
    agent_version TEXT NOT NULL REFERENCES agent_versions(version),
    input TEXT NOT NULL,
    status TEXT NOT NULL,
    tenant TEXT NOT NULL,
    user_id TEXT,
    session TEXT,
    tags TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    finished_at REAL,
    steps INTEGER NOT NULL DEFAULT 0,
    tool_calls INTEGER NOT NULL DEFAULT 0,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    cost REAL NOT NULL DEFAULT 0,
    reason TEXT,
    output TEXT,
    last_seq INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_expires_at REAL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    journal_deleted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs(status, lease_expires_at);
CREATE INDEX IF NOT EXISTS runs_by_created ON runs(created_at);
CREATE TABLE IF NOT EXISTS events (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    ts REAL NOT NULL,
    kind TEXT NOT NULL,
    data BLOB NOT NULL,
    blob TEXT,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS blobs (
    hash TEXT PRIMARY KEY,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS approvals (
    id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    call_id TEXT NOT NULL,
    tenant TEXT NOT NULL,
    agent TEXT NOT NULL,
    tool TEXT NOT NULL,
    arguments TEXT NOT NULL,
    role TEXT NOT NULL,
    rule TEXT NOT NULL,
    reason TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL,
    on_expiry TEXT NOT NULL,
    escalate_to TEXT,
    decided_by TEXT,
    decided_at REAL,
    comment TEXT,
    edited_arguments TEXT,
    replaces TEXT
);
CREATE INDEX IF NOT EXISTS approvals_by_status ON approvals(status, created_at);
CREATE INDEX IF NOT EXISTS approvals_by_run ON approvals(run_id);
CREATE TABLE IF NOT EXISTS kill_switches (
    scope TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    set_by TEXT NOT NULL,
    set_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS rate_counters (
    key TEXT PRIMARY KEY,
    window_start REAL NOT NULL,
    count INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    role TEXT NOT NULL,
    name TEXT NOT NULL,
    hash TEXT NOT NULL,
    created_at REAL NOT NULL,
    revoked_at REAL,
    last_used_at REAL
);
CREATE TABLE IF NOT EXISTS console_sessions (
    token_hash TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    tenant TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    data TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
"""

APPROVAL_COLUMNS = (
    "id, run_id, call_id, tenant, agent, tool, arguments, role, rule, reason, status,"
    " created_at, expires_at, on_expiry, escalate_to, decided_by, decided_at, comment,"
    " edited_arguments, replaces"
)


@dataclass(slots=True)
class _PendingAppend:
    run_id: str
    events: Sequence[Event]
    rows: list[EventRow]
    owner: str
    summary: RunSummary
    future: asyncio.Future[AppendResult]


class SqliteStore(SqliteObserve, Store):
    def __init__(self, path: str, *, busy_timeout_ms: int = 10_000):
        self.path = path
        self.url = path
        self._busy_timeout_ms = busy_timeout_ms
        self._conn: sqlite3.Connection | None = None
        self._pending: list[_PendingAppend] = []
        self._flush_scheduled = False
        self.commits = 0  # transactions written by group commit

    # -- lifecycle -------------------------------------------------------

    async def open(self) -> None:
        if self._conn is not None:
            return
        directory = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(directory):
            raise StoreError(
                f"cannot create database {self.path}: folder {directory} does not exist"
            )
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout={self._busy_timeout_ms}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open SQLite database {self.path}: {exc}") from exc
        self._conn = conn

    async def close(self) -> None:
        if self._pending:
            self._flush()
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError("the store is not open: call `await store.open()` first")
        return self._conn

    # -- writing ---------------------------------------------------------

    async def create_run(self, run: RunRecord, events: Sequence[Event]) -> None:
        now = time.time()
        run.created_at = run.created_at or now
        run.updated_at = now
        rows = event_rows(events, 1)
        run.last_seq = len(rows)
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT OR IGNORE INTO agent_versions(version, agent, spec, created_at)"
                " VALUES (?,?,?,?)",
                (run.agent_version, run.agent, orjson.dumps(run.spec).decode(), now),
            )
            if conn.execute("SELECT changes()").fetchone()[0]:
                self._insert_audit(
                    [version_registered(now, run.agent, run.agent_version, run.spec)]
                )
            conn.execute(
                "INSERT INTO runs(id, agent, agent_version, input, status, tenant, user_id, session,"
                " tags, created_at, updated_at, last_seq, lease_owner, lease_expires_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    run.id,
                    run.agent,
                    run.agent_version,
                    run.input,
                    run.status,
                    run.tenant,
                    run.user,
                    run.session,
                    orjson.dumps(run.tags).decode(),
                    run.created_at,
                    run.updated_at,
                    run.last_seq,
                    run.lease_owner,
                    run.lease_expires_at,
                ),
            )
            self._insert_rows(run.id, rows)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StoreError(f"could not create run {run.id}: {exc}") from exc

    async def append(
        self,
        run_id: str,
        events: Sequence[Event],
        *,
        first_seq: int,
        owner: str,
        summary: RunSummary,
    ) -> AppendResult:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[AppendResult] = loop.create_future()
        self._pending.append(
            _PendingAppend(run_id, events, event_rows(events, first_seq), owner, summary, future)
        )
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        """Write every pending append in one transaction; on failure, retry each alone."""
        self._flush_scheduled = False
        batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            results = self._write_batch(batch)
        except Exception:
            results = []
            for item in batch:
                try:
                    results.extend(self._write_batch([item]))
                except Exception as exc:  # every waiter must hear back, whatever failed
                    results.append(StoreError(f"could not append to run {item.run_id}: {exc}"))
        for item, result in zip(batch, results, strict=True):
            if item.future.done():
                continue
            if isinstance(result, BaseException):
                item.future.set_exception(result)
            else:
                item.future.set_result(result)

    def _write_batch(self, batch: list[_PendingAppend]) -> list[AppendResult | BaseException]:
        """One transaction, a constant number of statements whatever the batch size."""
        conn = self.conn
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        try:
            ids = list({item.run_id for item in batch})
            owners = {}
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for run_id, owner, cancel, tenant, agent in conn.execute(
                    "SELECT id, lease_owner, cancel_requested, tenant, agent FROM runs"
                    f" WHERE id IN ({marks})",
                    chunk,
                ):
                    owners[run_id] = (owner, bool(cancel), tenant, agent)
            kept = [i for i in batch if owners.get(i.run_id, (None,))[0] == i.owner]
            conn.executemany(
                "UPDATE runs SET status=?, steps=?, tool_calls=?, input_tokens=?,"
                " output_tokens=?, cost=?, reason=?, output=?, finished_at=?, updated_at=?,"
                " last_seq=coalesce(?, last_seq) WHERE id=?",
                [
                    (
                        i.summary.status,
                        i.summary.steps,
                        i.summary.tool_calls,
                        i.summary.input_tokens,
                        i.summary.output_tokens,
                        i.summary.cost,
                        i.summary.reason,
                        i.summary.output,
                        i.summary.finished_at,
                        now,
                        i.rows[-1].seq if i.rows else None,
                        i.run_id,
                    )
                    for i in kept
                ],
            )
            for item in kept:
                for r in item.rows:
                    if r.blob is not None:
                        conn.execute(
                            "INSERT OR IGNORE INTO blobs(hash, data) VALUES (?, ?)",
                            (r.blob, r.blob_data),
                        )
            conn.executemany(
                "INSERT INTO events(run_id, seq, ts, kind, data, blob) VALUES (?,?,?,?,?,?)",
                [(i.run_id, r.seq, r.ts, r.kind, r.data, r.blob) for i in kept for r in i.rows],
            )
            audit: list[AuditEntry] = []
            for item in kept:
                _, _, tenant, agent = owners[item.run_id]
                audit.extend(self._governance_rows(item, tenant=tenant, agent=agent))
            if audit:
                self._insert_audit(audit)
            switches = self._kill_switches()
            conn.execute("COMMIT")
            self.commits += 1
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return [
            AppendResult(owners[i.run_id][1], switches)
            if owners.get(i.run_id, (None,))[0] == i.owner
            else LeaseLost(f"run {i.run_id} is no longer leased to {i.owner}")
            for i in batch
        ]

    def _governance_rows(
        self, item: _PendingAppend, *, tenant: str, agent: str
    ) -> list[AuditEntry]:
        """Approval rows (inserted) and audit records (returned) derived from the events."""
        conn = self.conn
        audit = []
        for event in item.events:
            if isinstance(event, ApprovalRequested):
                conn.execute(
                    f"INSERT INTO approvals({APPROVAL_COLUMNS}) VALUES"
                    " (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,NULL,NULL,NULL,NULL,NULL)",
                    (
                        event.approval_id,
                        item.run_id,
                        event.call_id,
                        tenant,
                        agent,
                        event.tool,
                        event.arguments,
                        event.role,
                        event.rule,
                        event.reason,
                        PENDING,
                        event.ts,
                        event.expires_at,
                        event.on_expiry,
                        event.escalate_to,
                    ),
                )
            entry = audit_entry_for(item.run_id, tenant, event, item.owner)
            if entry is not None:
                audit.append(entry)
        if item.summary.status == WAITING_APPROVAL:
            # Every approval may have been resolved before the run parked: then it goes
            # straight back to the queue instead of waiting for nobody.
            conn.execute(
                "UPDATE runs SET status=? WHERE id=? AND NOT EXISTS"
                " (SELECT 1 FROM approvals WHERE run_id=? AND status=?)",
                (QUEUED, item.run_id, item.run_id, PENDING),
            )
        return audit

    def _insert_audit(self, entries: Sequence[AuditEntry]) -> None:
        conn = self.conn
        row = conn.execute("SELECT hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        prev = row[0] if row else GENESIS
        rows = []
        for entry in entries:
            digest = chain_hash(prev, entry)
            rows.append(
                (
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
        conn.executemany(
            "INSERT INTO audit(ts, tenant, actor, action, subject, data, prev_hash, hash)"
            " VALUES (?,?,?,?,?,?,?,?)",
            rows,
        )

    def _insert_rows(self, run_id: str, rows: list[EventRow]) -> None:
        conn = self.conn
        for r in rows:
            if r.blob is not None:
                conn.execute(
                    "INSERT OR IGNORE INTO blobs(hash, data) VALUES (?, ?)", (r.blob, r.blob_data)
                )
        conn.executemany(
            "INSERT INTO events(run_id, seq, ts, kind, data, blob) VALUES (?,?,?,?,?,?)",
            [(run_id, r.seq, r.ts, r.kind, r.data, r.blob) for r in rows],
        )

    # -- reading ---------------------------------------------------------

    async def events(self, run_id: str, after_seq: int = 0) -> list[tuple[int, Event]]:
        rows = self.conn.execute(
            "SELECT seq, ts, kind, data FROM events WHERE run_id=? AND seq>? ORDER BY seq",
            (run_id, after_seq),
        ).fetchall()
        return [(seq, decode_row(kind, ts, data, self._blob)) for seq, ts, kind, data in rows]

    def _blob(self, digest: str) -> bytes:
        row = self.conn.execute("SELECT data FROM blobs WHERE hash=?", (digest,)).fetchone()
        if row is None:
            raise StoreError(f"journal references payload {digest} that is missing from blobs")
        return bytes(row[0])

    async def get_run(self, run_id: str) -> RunRecord | None:
        row = self.conn.execute(
            f"SELECT {RUN_COLUMNS} FROM runs r JOIN agent_versions v ON v.version=r.agent_version"
            " WHERE r.id=?",
            (run_id,),
        ).fetchone()
        return run_from_row(row) if row else None

    async def list_runs(
        self,
        *,
        status: str | None = None,
        agent: str | None = None,
        limit: int = 50,
        tenant: str | None = None,
        user: str | None = None,
        tag: tuple[str, str] | None = None,
        since: float | None = None,
        until: float | None = None,
        offset: int = 0,
    ) -> list[RunRecord]:
        where: list[str] = []
        params: list[object] = []
        for clause, value in (
            ("r.status=?", status),
            ("r.agent=?", agent),
            ("r.tenant=?", tenant),
            ("r.user_id=?", user),
            ("r.created_at>=?", since),
            ("r.created_at<?", until),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        if tag is not None:
            where.append("EXISTS (SELECT 1 FROM json_each(r.tags) WHERE key=? AND value=?)")
            params.extend(tag)
        sql = f"SELECT {RUN_COLUMNS} FROM runs r JOIN agent_versions v ON v.version=r.agent_version"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY r.created_at DESC, r.id DESC LIMIT ? OFFSET ?"
        params.extend((limit, offset))
        return [run_from_row(row) for row in self.conn.execute(sql, params).fetchall()]

    # -- leases ----------------------------------------------------------

    async def claim(self, worker: str, *, limit: int, lease_seconds: float) -> list[RunRecord]:
        conn = self.conn
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        try:
            ids = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM runs WHERE status=? OR (status=? AND"
                    " (lease_expires_at IS NULL OR lease_expires_at < ?))"
                    " ORDER BY created_at LIMIT ?",
                    (QUEUED, RUNNING, now, limit),
                ).fetchall()
            ]
            conn.executemany(
                "UPDATE runs SET status=?, lease_owner=?, lease_expires_at=?, updated_at=?"
                " WHERE id=?",
                [(RUNNING, worker, now + lease_seconds, now, run_id) for run_id in ids],
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        runs = [await self.get_run(run_id) for run_id in ids]
        return [r for r in runs if r is not None]

    async def claim_one(
        self, worker: str, run_id: str, *, lease_seconds: float
    ) -> RunRecord | None:
        now = time.time()
        rows = self.conn.execute(
            "UPDATE runs SET status=?, lease_owner=?, lease_expires_at=?, updated_at=?"
            " WHERE id=? AND (status=? OR (status=? AND"
            " (lease_expires_at IS NULL OR lease_expires_at < ?))) RETURNING id",
            (RUNNING, worker, now + lease_seconds, now, run_id, QUEUED, RUNNING, now),
        ).fetchall()
        return await self.get_run(run_id) if rows else None

    async def heartbeat(
        self, worker: str, run_ids: Sequence[str], lease_seconds: float
    ) -> set[str]:
        if not run_ids:
            return set()
        conn = self.conn
        now = time.time()
        marks = ",".join("?" * len(run_ids))
        rows = conn.execute(
            f"UPDATE runs SET lease_expires_at=? WHERE lease_owner=? AND id IN ({marks})"
            " RETURNING id",
            (now + lease_seconds, worker, *run_ids),
        ).fetchall()
        return {r[0] for r in rows}

    async def release(self, run_id: str, worker: str) -> None:
        self.conn.execute(
            "UPDATE runs SET lease_owner=NULL, lease_expires_at=NULL WHERE id=? AND lease_owner=?",
            (run_id, worker),
        )

    async def set_status(self, run_id: str, status: str, *, reason: str | None = None) -> None:
        terminal = ",".join(f"'{s}'" for s in TERMINAL_STATUSES)
        self.conn.execute(
            f"UPDATE runs SET status=?, reason=?, updated_at=? WHERE id=? AND status NOT IN ({terminal})",
            (status, reason, time.time(), run_id),
        )

    async def request_cancel(self, run_id: str) -> bool:
        terminal = ",".join(f"'{s}'" for s in TERMINAL_STATUSES)
        rows = self.conn.execute(
            f"UPDATE runs SET cancel_requested=1 WHERE id=? AND status NOT IN ({terminal})"
            " RETURNING id",
            (run_id,),
        ).fetchall()
        return bool(rows)

    # -- retention -------------------------------------------------------

    async def gc(self, older_than: float) -> GcReport:
        conn = self.conn
        terminal = ",".join(f"'{s}'" for s in TERMINAL_STATUSES)
        conn.execute("BEGIN IMMEDIATE")
        try:
            ids = [
                r[0]
                for r in conn.execute(
                    f"SELECT id FROM runs WHERE status IN ({terminal}) AND finished_at < ?"
                    " AND journal_deleted=0",
                    (older_than,),
                ).fetchall()
            ]
            n_events = n_bytes = 0
            for run_id in ids:
                count, size = conn.execute(
                    "SELECT count(*), coalesce(sum(length(data)),0) FROM events WHERE run_id=?",
                    (run_id,),
                ).fetchone()
                conn.execute("DELETE FROM events WHERE run_id=?", (run_id,))
                conn.execute("UPDATE runs SET journal_deleted=1 WHERE id=?", (run_id,))
                n_events += count
                n_bytes += size
            n_blobs, blob_bytes = conn.execute(
                "SELECT count(*), coalesce(sum(length(data)),0) FROM blobs WHERE hash NOT IN"
                " (SELECT blob FROM events WHERE blob IS NOT NULL)"
            ).fetchone()
            conn.execute(
                "DELETE FROM blobs WHERE hash NOT IN (SELECT blob FROM events WHERE blob IS NOT NULL)"
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return GcReport(
            runs=len(ids), events=n_events, blobs=n_blobs, bytes_freed=n_bytes + blob_bytes
        )

    # -- maintenance -----------------------------------------------------

    async def acquire(self, run_id: str, worker: str, *, lease_seconds: float) -> RunRecord | None:
        now = time.time()
        rows = self.conn.execute(
            "UPDATE runs SET lease_owner=?, lease_expires_at=? WHERE id=? AND"
            " (lease_owner IS NULL OR lease_owner=? OR lease_expires_at IS NULL"
            " OR lease_expires_at < ?) RETURNING id",
            (worker, now + lease_seconds, run_id, worker, now),
        ).fetchall()
        return await self.get_run(run_id) if rows else None

    # -- governance: approvals --------------------------------------------

    def _approvals(self, where: str, params: Sequence[object]) -> list[ApprovalRecord]:
        rows = self.conn.execute(
            f"SELECT {APPROVAL_COLUMNS} FROM approvals WHERE {where} ORDER BY created_at, id",
            params,
        ).fetchall()
        return [ApprovalRecord(*row) for row in rows]

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
        where, params = ["1=1"], []
        for column, value in (("status", status), ("tenant", tenant), ("run_id", run_id)):
            if value is not None:
                where.append(f"{column}=?")
                params.append(value)
        return self._approvals(" AND ".join(where), params)

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
        conn = self.conn
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute(
                "UPDATE approvals SET status=?, decided_by=?, decided_at=?, comment=?,"
                f" edited_arguments=? WHERE id=? AND status=? RETURNING {APPROVAL_COLUMNS}",
                (decision, by, now, comment, arguments, approval_id, PENDING),
            ).fetchone()
            if row is None:
                conn.execute("ROLLBACK")
                existing = await self.get_approval(approval_id)
                if existing is None:
                    raise ApprovalConflict(f"no approval {approval_id!r}")
                raise ApprovalConflict(
                    f"approval {approval_id} is already {existing.status}"
                    + (f" by {existing.decided_by}" if existing.decided_by else "")
                    + "; it cannot be resolved twice"
                )
            record = ApprovalRecord(*row)
            self._requeue_if_resolved(record.run_id)
            self._insert_audit([approval_audit(record, "approval_decided", by, now)])
            conn.execute("COMMIT")
        except ApprovalConflict:
            raise
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return record

    def _requeue_if_resolved(self, run_id: str) -> None:
        self.conn.execute(
            "UPDATE runs SET status=?, updated_at=? WHERE id=? AND status=? AND NOT EXISTS"
            " (SELECT 1 FROM approvals WHERE run_id=? AND status=?)",
            (QUEUED, time.time(), run_id, WAITING_APPROVAL, run_id, PENDING),
        )

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
                if old.on_expiry == "escalate" and old.escalate_to:
                    conn.execute(
                        "UPDATE approvals SET status=?, decided_by='expiry', decided_at=?"
                        " WHERE id=?",
                        (ESCALATED, now, old.id),
                    )
                    new_id = f"{old.id}.esc"
                    conn.execute(
                        f"INSERT INTO approvals({APPROVAL_COLUMNS}) SELECT ?, run_id, call_id,"
                        " tenant, agent, tool, arguments, ?, rule, reason, ?, ?, NULL, 'deny',"
                        " NULL, NULL, NULL, NULL, NULL, id FROM approvals WHERE id=?",
                        (new_id, old.escalate_to, PENDING, now, old.id),
                    )
                    new = self._approvals("id=?", (new_id,))[0]
                    audit.append(approval_audit(new, "approval_escalated", "expiry", now))
                    out.append(new)
                else:
                    conn.execute(
                        "UPDATE approvals SET status=?, decided_by='expiry', decided_at=?"
                        " WHERE id=?",
                        (EXPIRED, now, old.id),
                    )
                    expired = self._approvals("id=?", (old.id,))[0]
                    audit.append(approval_audit(expired, "approval_expired", "expiry", now))
                    self._requeue_if_resolved(old.run_id)
                    out.append(expired)
            if audit:
                self._insert_audit(audit)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return out

    # -- governance: kill switches, quotas, spend ---------------------------

    async def set_kill_switch(self, scope: str, *, reason: str, by: str) -> KillSwitch:
        now = time.time()
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "INSERT INTO kill_switches(scope, reason, set_by, set_at) VALUES (?,?,?,?)"
                " ON CONFLICT(scope) DO UPDATE SET reason=excluded.reason,"
                " set_by=excluded.set_by, set_at=excluded.set_at",
                (scope, reason, by, now),
            )
            self._insert_audit(
                [
                    AuditEntry(
                        now, by, "kill_switch_set", scope, {"reason": reason}, scope_tenant(scope)
                    )
                ]
            )
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
            gone = conn.execute(
                "DELETE FROM kill_switches WHERE scope=? RETURNING reason", (scope,)
            ).fetchone()
            if gone is not None:
                self._insert_audit(
                    [AuditEntry(now, by, "kill_switch_cleared", scope, {}, scope_tenant(scope))]
                )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return gone is not None

    async def kill_switches(self) -> list[KillSwitch]:
        return list(self._kill_switches())

    def _kill_switches(self) -> tuple[KillSwitch, ...]:
        rows = self.conn.execute(
            "SELECT scope, reason, set_by, set_at FROM kill_switches ORDER BY set_at"
        ).fetchall()
        return tuple(KillSwitch(*r) for r in rows)

    async def active_kill_switch(self, scopes: Sequence[str]) -> KillSwitch | None:
        marks = ",".join("?" * len(scopes))
        row = self.conn.execute(
            f"SELECT scope, reason, set_by, set_at FROM kill_switches WHERE scope IN ({marks})"
            " ORDER BY set_at LIMIT 1",
            tuple(scopes),
        ).fetchone()
        return KillSwitch(*row) if row else None

    async def take_rate(self, key: str, *, limit: int, window_seconds: float) -> bool:
        window = int(time.time() // window_seconds) * window_seconds
        count = self.conn.execute(
            "INSERT INTO rate_counters(key, window_start, count) VALUES (?, ?, 1)"
            " ON CONFLICT(key) DO UPDATE SET"
            " count = CASE WHEN window_start = excluded.window_start THEN count + 1 ELSE 1 END,"
            " window_start = excluded.window_start RETURNING count",
            (key, window),
        ).fetchone()[0]
        return count <= limit

    async def spend_since(
        self, since: float, *, agent: str | None = None, tenant: str | None = None
    ) -> float:
        sql, params = "SELECT coalesce(sum(cost), 0) FROM runs WHERE created_at >= ?", [since]
        if agent is not None:
            sql += " AND agent=?"
            params.append(agent)
        if tenant is not None:
            sql += " AND tenant=?"
            params.append(tenant)
        return float(self.conn.execute(sql, params).fetchone()[0])

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

    async def audit_records(
        self, after_seq: int = 0, limit: int | None = None
    ) -> list[AuditRecord]:
        sql = (
            "SELECT seq, ts, actor, action, subject, data, tenant, prev_hash, hash FROM audit"
            " WHERE seq > ? ORDER BY seq"
        )
        params: list[object] = [after_seq]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [
            AuditRecord(
                seq, AuditEntry(ts, actor, action, subject, orjson.loads(data), tenant), prev, h
            )
            for seq, ts, actor, action, subject, data, tenant, prev, h in self.conn.execute(
                sql, params
            ).fetchall()
        ]

    # -- control plane: API keys and console sessions -----------------------

    async def create_api_key(self, key: ApiKey) -> None:
        self.conn.execute(
            f"INSERT INTO api_keys({_KEY_COLUMNS}) VALUES (?,?,?,?,?,?,?,?)",
            (
                key.id,
                key.tenant,
                key.role,
                key.name,
                key.hash,
                key.created_at,
                key.revoked_at,
                key.last_used_at,
            ),
        )

    async def get_api_key(self, key_id: str) -> ApiKey | None:
        row = self.conn.execute(
            f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE id=?", (key_id,)
        ).fetchone()
        return ApiKey(*row) if row else None

    async def list_api_keys(self, *, tenant: str | None = None) -> list[ApiKey]:
        sql, params = f"SELECT {_KEY_COLUMNS} FROM api_keys", []
        if tenant is not None:
            sql += " WHERE tenant=?"
            params.append(tenant)
        rows = self.conn.execute(sql + " ORDER BY created_at, id", params).fetchall()
        return [ApiKey(*row) for row in rows]

    async def revoke_api_key(self, key_id: str, *, now: float) -> bool:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            gone = conn.execute(
                "UPDATE api_keys SET revoked_at=? WHERE id=? AND revoked_at IS NULL RETURNING id",
                (now, key_id),
            ).fetchone()
            conn.execute("DELETE FROM console_sessions WHERE key_id=?", (key_id,))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return gone is not None

    async def touch_api_key(self, key_id: str, *, now: float) -> None:
        self.conn.execute("UPDATE api_keys SET last_used_at=? WHERE id=?", (now, key_id))

    async def create_console_session(self, session: ConsoleSession) -> None:
        self.conn.execute(
            "INSERT INTO console_sessions(token_hash, key_id, csrf, created_at, expires_at)"
            " VALUES (?,?,?,?,?)",
            (
                session.token_hash,
                session.key_id,
                session.csrf,
                session.created_at,
                session.expires_at,
            ),
        )

    async def get_console_session(self, token_hash: str, *, now: float) -> ConsoleSession | None:
        row = self.conn.execute(
            "SELECT token_hash, key_id, csrf, created_at, expires_at FROM console_sessions"
            " WHERE token_hash=? AND expires_at>?",
            (token_hash, now),
        ).fetchone()
        return ConsoleSession(*row) if row else None

    async def delete_console_session(self, token_hash: str) -> None:
        self.conn.execute(
            "DELETE FROM console_sessions WHERE token_hash=? OR expires_at<?",
            (token_hash, time.time()),
        )


_KEY_COLUMNS = "id, tenant, role, name, hash, created_at, revoked_at, last_used_at"
