"""Runs on PostgreSQL: the connections, run rows and their reads, status changes, retention."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence

import orjson
import psycopg

from bosun.errors import StoreError, StoreUnavailable
from bosun.journal.audit import (
    version_registered,
)
from bosun.journal.events import Event
from bosun.spec.vocab import RunStatus
from bosun.store import budgets_sql, sql
from bosun.store.base import (
    PAUSED,
    QUEUED,
    GcReport,
    RunRecord,
)
from bosun.store.health import StoreHealth
from bosun.store.postgres.artifacts import sweep_locked as sweep_artifacts_locked
from bosun.store.postgres.audit import insert_audit
from bosun.store.postgres.errors import (
    BLOBS_EXCLUSIVE,
    BLOBS_SHARED,
    TERMINAL,
    redact,
    url_password,
    usable,
)
from bosun.store.postgres.journal import PendingAppend, insert_rows
from bosun.store.postgres.migrations import migrate_database
from bosun.store.rows import (
    RUN_COLUMNS,
    EventRow,
    decode_row,
    new_run_rows,
    run_from_row,
)
from bosun.store.sql import pg

log = logging.getLogger("bosun.store")

_RUNS_JOIN = "runs r JOIN agent_versions v ON v.version = r.agent_version"
_SET_STATUS = pg(sql.SET_STATUS)
_REQUEST_CANCEL = pg(sql.REQUEST_CANCEL)
_REQUEST_PAUSE = pg(sql.REQUEST_PAUSE)
_UNPAUSE = pg(sql.UNPAUSE)


class PostgresRuns:
    """Two connections (reads and the writer's) and the run rows."""

    def __init__(
        self, url: str, *, connect_timeout: float = 10.0, write_retry_seconds: float = 30.0
    ):
        self.url = url
        self._connect_timeout = connect_timeout
        # How long an append waits for an unreachable database before it fails (by default
        # the default lease: past it, another worker may have taken the run over anyway).
        self.write_retry_seconds = write_retry_seconds
        self.health = StoreHealth(redact(url))
        self._conn: psycopg.AsyncConnection | None = None
        self._writer_conn: psycopg.AsyncConnection | None = None
        self._lock = asyncio.Lock()
        self._pending: list[PendingAppend] = []
        self._in_flight: list[PendingAppend] = []  # the batch the writer is writing
        self._wakeup = asyncio.Event()
        self._stopping = asyncio.Event()  # set by close(): appends stop waiting for retries
        self._writer: asyncio.Task[None] | None = None
        self._closing = False
        self._committing = False  # the writer's transaction is past its last statement
        self.commits = 0  # transactions written by the group-commit writer

    # -- lifecycle -------------------------------------------------------

    async def open(self) -> None:
        if self._conn is not None:
            return
        conn = await self._connect()
        try:
            await migrate_database(conn, f"PostgreSQL database {redact(self.url)}")
            self._writer_conn = await self._connect()
        except BaseException as exc:
            await conn.close()
            if isinstance(exc, psycopg.Error):
                raise StoreError(
                    f"could not create the Bosun schema in {redact(self.url)}: {exc}"
                ) from exc
            raise
        self._conn = conn
        self._closing = False
        self._stopping.clear()
        self._start_writer()

    def _start_writer(self) -> None:
        self._writer = asyncio.create_task(self._write_loop(), name="bosun-postgres-writer")

    async def _connect(self) -> psycopg.AsyncConnection:
        kwargs: dict[str, object] = {}
        if "connect_timeout" not in self.url:
            kwargs["connect_timeout"] = max(1, round(self._connect_timeout))
        if "application_name" not in self.url:
            kwargs["application_name"] = "bosun"
        try:
            return await psycopg.AsyncConnection.connect(self.url, autocommit=True, **kwargs)
        except psycopg.Error as exc:
            message = str(exc)
            password = url_password(self.url)
            if password:
                message = message.replace(password, "***")
            error = (
                f"cannot connect to PostgreSQL at {redact(self.url)}: {message.strip()}. "
                "Check that the server is running and the URL (host, port, database, user) is right."
            )
            raise StoreUnavailable(error) from None

    async def close(self) -> None:
        if self._writer is not None:
            self._closing = True
            self._stopping.set()
            self._wakeup.set()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._writer
            self._writer = None
        for conn in (self._writer_conn, self._conn):
            if conn is not None:
                await conn.close()
        self._conn = self._writer_conn = None

    async def _reader(self) -> psycopg.AsyncConnection:
        if self._conn is None:
            raise StoreError("the store is not open: call `await store.open()` first")
        if not usable(self._conn):
            self._conn = await self._connect()
        return self._conn

    @contextlib.asynccontextmanager
    async def _session(self, what: str) -> AsyncIterator[psycopg.AsyncConnection]:
        """The shared connection, alone; psycopg errors become StoreError saying `what` failed
        (`StoreUnavailable` when the database, not the request, is at fault)."""
        async with self._lock:
            try:
                conn = await self._reader()
            except StoreUnavailable as exc:
                self.health.failed(str(exc))
                raise
            try:
                yield conn
            except psycopg.OperationalError as exc:
                error = f"could not {what}: {str(exc).strip()}"
                self.health.failed(error)
                raise StoreUnavailable(error) from exc
            except psycopg.Error as exc:
                raise StoreError(f"could not {what}: {exc}") from exc
            if self.health.failing_since is not None:
                self.health.succeeded()

    # -- writing ---------------------------------------------------------

    async def create_run(self, run: RunRecord, events: Sequence[Event]) -> RunRecord:
        now = time.time()
        rows = new_run_rows(run, events, now)
        if run.idempotency_key is not None and (existing := await self._keyed(run)) is not None:
            return existing
        raced = False
        async with self._session(f"create run {run.id}") as conn, conn.transaction():
            if run.idempotency_key is not None:
                # Held to the end of the transaction: a concurrent create with this key
                # waits here, then finds the winner's run.
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtext('bosun.key:' || %s || ':' || %s))",
                    (run.tenant, run.idempotency_key),
                )
                cur = await conn.execute(
                    "SELECT 1 FROM runs WHERE tenant=%s AND idempotency_key=%s",
                    (run.tenant, run.idempotency_key),
                )
                raced = (await cur.fetchone()) is not None
            if not raced:
                await budgets_sql.postgres_reserve(conn, run, now)  # or BudgetExhausted
                await self._insert_run(conn, run, rows, now)
        if raced:
            existing = await self._keyed(run)
            if existing is None:
                raise StoreError(f"the run with idempotency key {run.idempotency_key!r} vanished")
            return existing
        return run

    async def _keyed(self, run: RunRecord) -> RunRecord | None:
        """The run its tenant created with `run`'s idempotency key, if any."""
        async with self._session("look up an idempotency key") as conn:
            cur = await conn.execute(
                f"SELECT {RUN_COLUMNS} FROM {_RUNS_JOIN} WHERE r.tenant=%s AND r.idempotency_key=%s",
                (run.tenant, run.idempotency_key),
            )
            row = await cur.fetchone()
        return run_from_row(row) if row is not None else None

    async def _insert_run(
        self, conn: psycopg.AsyncConnection, run: RunRecord, rows: list[EventRow], now: float
    ) -> None:
        """The run row, a new agent version (audited) and the first events."""
        if any(r.blob for r in rows):
            await conn.execute(BLOBS_SHARED)
        cur = await conn.execute(
            "INSERT INTO agent_versions(version, agent, spec, created_at)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (version) DO NOTHING",
            (run.agent_version, run.agent, orjson.dumps(run.spec).decode(), now),
        )
        if cur.rowcount:
            await insert_audit(
                conn, [version_registered(now, run.agent, run.agent_version, run.spec)]
            )
        await conn.execute(
            "INSERT INTO runs(id, agent, agent_version, input, status, tenant, user_id,"
            " session, tags, created_at, updated_at, last_seq, lease_owner, lease_expires_at,"
            f" parent_id, root_id, idempotency_key, {budgets_sql.BUDGET_COLUMNS}) VALUES"
            " (%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s, %s, %s, %s, %s, %s,"
            " %s, %s, %s, %s, %s, %s, %s)",
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
                run.parent_id,
                run.root_id,
                run.idempotency_key,
                *budgets_sql.budget_values(run),
            ),
        )
        await insert_rows(conn, [(run.id, r) for r in rows])

    # -- reading ---------------------------------------------------------

    async def events(self, run_id: str, after_seq: int = 0) -> list[tuple[int, Event]]:
        async with self._session(f"read the journal of run {run_id}") as conn:
            cur = await conn.execute(
                "SELECT seq, ts, kind, data, blob FROM events WHERE run_id=%s AND seq>%s"
                " ORDER BY seq",
                (run_id, after_seq),
            )
            rows = await cur.fetchall()
            hashes = sorted({r[4] for r in rows if r[4] is not None})
            blobs: dict[str, bytes] = {}
            if hashes:
                cur = await conn.execute(
                    "SELECT hash, data FROM blobs WHERE hash = ANY(%s)", (hashes,)
                )
                blobs = {h: bytes(d) for h, d in await cur.fetchall()}

        def fetch_blob(digest: str) -> bytes:
            data = blobs.get(digest)
            if data is None:
                raise StoreError(
                    f"journal of run {run_id} references payload {digest} that is missing from blobs"
                )
            return data

        return [(seq, decode_row(kind, ts, data, fetch_blob)) for seq, ts, kind, data, _ in rows]

    async def get_run(self, run_id: str) -> RunRecord | None:
        async with self._session(f"read run {run_id}") as conn:
            cur = await conn.execute(
                f"SELECT {RUN_COLUMNS} FROM {_RUNS_JOIN} WHERE r.id=%s", (run_id,)
            )
            row = await cur.fetchone()
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
        where = [pg(clause) for clause in where]
        if tag is not None:
            where.append("r.tags @> %s::jsonb")
            params.append(orjson.dumps({tag[0]: tag[1]}).decode())
        query = f"SELECT {RUN_COLUMNS} FROM {_RUNS_JOIN}"
        if where:
            query += " WHERE " + " AND ".join(where)
        query += " ORDER BY r.created_at DESC, r.id DESC LIMIT %s OFFSET %s"
        params.extend((limit, offset))
        async with self._session("list runs") as conn:
            cur = await conn.execute(query, params)
            rows = await cur.fetchall()
        return [run_from_row(row) for row in rows]

    async def set_status(self, run_id: str, status: str, *, reason: str | None = None) -> None:
        async with self._session(f"set the status of run {run_id}") as conn:
            await conn.execute(_SET_STATUS, (status, reason, time.time(), run_id))

    async def request_cancel(self, run_id: str) -> bool:
        async with self._session(f"request cancel of run {run_id}") as conn:
            cur = await conn.execute(
                _REQUEST_CANCEL,
                (PAUSED, RunStatus.WAITING, RunStatus.WAITING_APPROVAL, QUEUED, run_id),
            )
            return any(row[0] == run_id for row in await cur.fetchall())

    async def request_pause(self, run_id: str) -> bool:
        async with self._session(f"request pause of run {run_id}") as conn:
            cur = await conn.execute(_REQUEST_PAUSE, (run_id, PAUSED))
            return any(row[0] == run_id for row in await cur.fetchall())

    async def unpause(self, run_id: str) -> bool:
        async with self._session(f"unpause run {run_id}") as conn:
            cur = await conn.execute(_UNPAUSE, (QUEUED, time.time(), run_id, PAUSED))
            return await cur.fetchone() is not None

    # -- retention -------------------------------------------------------

    async def gc(self, older_than: float, *, dry_run: bool = False) -> GcReport:
        report = GcReport(runs=0, events=0, blobs=0, bytes_freed=0, dry_run=dry_run)
        async with self._session("collect old journals") as conn:
            try:
                async with conn.transaction():
                    report = await self._gc_locked(conn, older_than, dry_run)
                    if dry_run:
                        raise _RolledBack
            except _RolledBack:
                pass
        return report

    async def _gc_locked(
        self, conn: psycopg.AsyncConnection, older_than: float, dry_run: bool
    ) -> GcReport:
        await conn.execute(BLOBS_EXCLUSIVE)
        cur = await conn.execute(
            "UPDATE runs SET journal_deleted=true WHERE status = ANY(%s)"
            " AND finished_at < %s AND NOT journal_deleted RETURNING id",
            (TERMINAL, older_than),
        )
        ids = [r[0] for r in await cur.fetchall()]
        n_events = event_bytes = n_blobs = blob_bytes = 0
        if ids:
            cur = await conn.execute(
                "WITH gone AS (DELETE FROM events WHERE run_id = ANY(%s)"
                " RETURNING blob, octet_length(data) AS size)"
                " SELECT count(*), coalesce(sum(size), 0),"
                " coalesce(array_agg(DISTINCT blob) FILTER (WHERE blob IS NOT NULL), '{}')"
                " FROM gone",
                (ids,),
            )
            n_events, event_bytes, candidates = await cur.fetchone()
            if candidates:
                cur = await conn.execute(
                    "WITH gone AS (DELETE FROM blobs b WHERE b.hash = ANY(%s) AND NOT EXISTS"
                    " (SELECT 1 FROM events e WHERE e.blob = b.hash)"
                    " RETURNING octet_length(data) AS size)"
                    " SELECT count(*), coalesce(sum(size), 0) FROM gone",
                    (candidates,),
                )
                n_blobs, blob_bytes = await cur.fetchone()
        swept = await sweep_artifacts_locked(conn, older_than)
        return GcReport(
            runs=len(ids),
            events=n_events,
            blobs=n_blobs,
            bytes_freed=int(event_bytes) + int(blob_bytes),
            artifacts=len(swept),
            artifact_bytes=sum(n for _, _, n in swept),
            dry_run=dry_run,
        )


class _RolledBack(Exception):
    """Raised inside a transaction to roll it back (`gc(dry_run=True)`)."""
