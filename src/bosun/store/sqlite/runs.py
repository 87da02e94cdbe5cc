"""Runs on SQLite: the connection, run rows, their reads, status changes and retention."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time

import orjson

from bosun.errors import StoreError
from bosun.journal.audit import (
    AuditEntry,
    version_registered,
)
from bosun.journal.events import Event
from bosun.spec.vocab import RunStatus
from bosun.store import budgets_sql, sql
from bosun.store.base import (
    PAUSED,
    QUEUED,
    TERMINAL_STATUSES,
    Breaker,
    GcReport,
    RunRecord,
    RunSummary,
)
from bosun.store.health import StoreHealth
from bosun.store.rows import (
    decode_row,
    run_from_row,
)
from bosun.store.sqlite.artifacts import default_folder
from bosun.store.sqlite.batch import (
    EXACT_RUN_COLUMNS,
    Pending,
    PendingCreate,
    Unaudited,
)
from bosun.store.sqlite.migrations import migrate_database

log = logging.getLogger("bosun.store")


class SqliteRuns:
    """The connection, run rows and their reads, status changes and retention."""

    def _sweep_locked(self, older_than: float) -> list[tuple[str, str, int]]:
        raise NotImplementedError  # `SqliteArtifacts._sweep_locked`

    def _unlink_unheld(self, digests: set[str]) -> None:
        raise NotImplementedError  # `SqliteArtifacts._unlink_unheld`

    def __init__(
        self,
        path: str,
        *,
        busy_timeout_ms: int = 10_000,
        write_retry_seconds: float = 30.0,
        artifacts_dir: str | None = None,
    ):
        self.path = path
        # Artifacts' bytes live in files here (`bosun.store.sqlite.artifacts`).
        self.artifacts_dir = artifacts_dir or default_folder(path)
        self.url = path
        self._busy_timeout_ms = busy_timeout_ms
        # How long an append waits for a database it cannot write (a full disk) before it
        # fails: by default the default lease, past which the run may be taken over anyway.
        self.write_retry_seconds = write_retry_seconds
        self.health = StoreHealth(f"SQLite database {path}")
        self._catch_up_failing = False  # the audit catch-up failed; logged once until it works
        self._conn: sqlite3.Connection | None = None
        self._pending: list[Pending] = []
        self._flush_due = False  # a task will write `_pending` when the loop comes back to it
        # The summary this store last wrote to the row of each run it is driving: a commit that
        # would write the same values again (a tool result) leaves the row alone, one page fewer.
        self._written: dict[str, RunSummary] = {}
        # Waiting for the next catch-up (see the module docstring): audit records in journal
        # order, and the totals of running runs' rows, by run: (no, summary, last_seq).
        self._unaudited: list[Unaudited] = []
        self._behind: dict[str, tuple[int, RunSummary, int]] = {}
        self._waiting_since = 0.0
        self._catch_up_timer: asyncio.TimerHandle | None = None
        self.commits = 0  # transactions written by group commit
        self._breakers_seen: tuple[Breaker, ...] = ()  # failing breakers, as last read
        self._breakers_read_at = 0.0

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
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open SQLite database {self.path}: {exc}") from exc
        try:
            conn.execute(f"PRAGMA busy_timeout={self._busy_timeout_ms}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            migrate_database(conn, f"SQLite database {self.path}")
        except BaseException as exc:
            conn.close()
            if isinstance(exc, sqlite3.DatabaseError):
                raise StoreError(f"cannot open SQLite database {self.path}: {exc}") from exc
            raise
        self._conn = conn

    async def close(self) -> None:
        if self._pending:
            self._flush()
        if self._conn is not None:
            self._catch_up()
            self._conn.close()
            self._conn = None

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError("the store is not open: call `await store.open()` first")
        return self._conn

    def _new_keys(self, creates: list[PendingCreate]) -> list[PendingCreate]:
        """The creates to insert: a keyed one whose key its tenant has used (before, or
        earlier in this batch) learns that run's id instead. Read under the write lock, so
        concurrent creates, also from other processes, agree."""
        taken: dict[tuple[str, str], str] = {}
        kept = []
        for create in creates:
            create.existing = None  # a batch retried item by item decides afresh
            run = create.run
            if run.idempotency_key is None:
                kept.append(create)
                continue
            key = (run.tenant, run.idempotency_key)
            if key not in taken:
                row = self.conn.execute(sql.KEYED_RUN_ID, key).fetchone()
                if row is None:
                    taken[key] = run.id
                    kept.append(create)
                    continue
                taken[key] = row[0]
            create.existing = taken[key]
        return kept

    def _reserve(self, creates: list[PendingCreate], now: float) -> list[PendingCreate]:
        """The creates to insert: a child whose parent has not enough budget left is refused
        (`BudgetExhausted` to its caller). Decided afresh when a batch is retried."""
        kept = []
        fits = budgets_sql.sqlite_reserve(self.conn, [c.run for c in creates], now)
        for create, fit in zip(creates, fits, strict=True):
            create.refused = None if fit else budgets_sql.sqlite_refused(create.run)
            if fit:
                kept.append(create)
        return kept

    def _insert_runs(self, creates: list[PendingCreate], now: float) -> list[AuditEntry]:
        """Insert new runs (numbered here: we hold the write lock); register new versions."""
        conn = self.conn
        versions = {c.run.agent_version: c.run for c in creates}
        marks = ",".join("?" * len(versions))
        known = {
            row[0]
            for row in conn.execute(
                f"SELECT version FROM agent_versions WHERE version IN ({marks})", list(versions)
            )
        }
        new = [run for version, run in versions.items() if version not in known]
        conn.executemany(
            "INSERT INTO agent_versions(version, agent, spec, created_at) VALUES (?,?,?,?)",
            [(r.agent_version, r.agent, orjson.dumps(r.spec).decode(), now) for r in new],
        )
        audit = [version_registered(now, r.agent, r.agent_version, r.spec) for r in new]
        last = conn.execute("SELECT coalesce(max(no), 0) FROM runs").fetchone()[0]
        for offset, create in enumerate(creates, start=1):
            create.no = last + offset
        conn.executemany(
            "INSERT INTO runs(no, id, agent, agent_version, input, status, tenant, user_id,"
            " session, tags, created_at, updated_at, last_seq, lease_owner, lease_expires_at,"
            f" parent_id, root_id, idempotency_key, {budgets_sql.BUDGET_COLUMNS})"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [
                (
                    no,
                    r.id,
                    r.agent,
                    r.agent_version,
                    r.input,
                    r.status,
                    r.tenant,
                    r.user,
                    r.session,
                    orjson.dumps(r.tags).decode(),
                    r.created_at,
                    r.updated_at,
                    r.last_seq,
                    r.lease_owner,
                    r.lease_expires_at,
                    r.parent_id,
                    r.root_id,
                    r.idempotency_key,
                    *budgets_sql.budget_values(r),
                )
                for no, r in ((c.no, c.run) for c in creates)
            ],
        )
        return audit

    # -- reading ---------------------------------------------------------

    async def events(self, run_id: str, after_seq: int = 0) -> list[tuple[int, Event]]:
        rows = self.conn.execute(
            "SELECT seq, ts, kind, data FROM events"
            " WHERE run=(SELECT no FROM runs WHERE id=?) AND seq>? ORDER BY seq",
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
            f"SELECT {EXACT_RUN_COLUMNS} FROM runs r JOIN agent_versions v ON v.version=r.agent_version"
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
        parent_id: str | None = None,
        root_id: str | None = None,
    ) -> list[RunRecord]:
        where, params = sql.run_filters(
            status=status, agent=agent, tenant=tenant, user=user, since=since, until=until,
            parent_id=parent_id, root_id=root_id,
        )  # fmt: skip
        if tag is not None:
            where.append("EXISTS (SELECT 1 FROM json_each(r.tags) WHERE key=? AND value=?)")
            params.extend(tag)
        query = f"SELECT {EXACT_RUN_COLUMNS} FROM runs r JOIN agent_versions v ON v.version=r.agent_version"
        if where:
            query += " WHERE " + " AND ".join(where)
        query += " ORDER BY r.created_at DESC, r.id DESC LIMIT ? OFFSET ?"
        params.extend((limit, offset))
        return [run_from_row(row) for row in self.conn.execute(query, params).fetchall()]

    async def set_status(self, run_id: str, status: str, *, reason: str | None = None) -> None:
        self.conn.execute(sql.SET_STATUS, (status, reason, time.time(), run_id))

    async def request_cancel(self, run_id: str) -> bool:
        rows = self.conn.execute(
            sql.REQUEST_CANCEL,
            (PAUSED, RunStatus.WAITING, RunStatus.WAITING_APPROVAL, QUEUED, run_id),
        ).fetchall()
        return any(row[0] == run_id for row in rows)

    async def request_pause(self, run_id: str) -> bool:
        rows = self.conn.execute(sql.REQUEST_PAUSE, (run_id, PAUSED)).fetchall()
        return any(row[0] == run_id for row in rows)

    async def unpause(self, run_id: str) -> bool:
        rows = self.conn.execute(sql.UNPAUSE, (QUEUED, time.time(), run_id, PAUSED)).fetchall()
        return bool(rows)

    # -- retention -------------------------------------------------------

    async def gc(self, older_than: float, *, dry_run: bool = False) -> GcReport:
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
                (no,) = conn.execute("SELECT no FROM runs WHERE id=?", (run_id,)).fetchone()
                count, size = conn.execute(
                    "SELECT count(*), coalesce(sum(length(data)),0) FROM events WHERE run=?",
                    (no,),
                ).fetchone()
                conn.execute("DELETE FROM events WHERE run=?", (no,))
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
            swept = self._sweep_locked(older_than)
            conn.execute("ROLLBACK" if dry_run else "COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        if not dry_run:
            self._unlink_unheld({d for _, d, _ in swept})
        return GcReport(
            runs=len(ids),
            events=n_events,
            blobs=n_blobs,
            bytes_freed=n_bytes + blob_bytes,
            artifacts=len(swept),
            artifact_bytes=sum(n for _, _, n in swept),
            dry_run=dry_run,
        )
