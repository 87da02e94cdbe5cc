"""PostgreSQL store: many workers on many machines share one database.

Two plain connections per store: one belongs to the group-commit writer, the
other (behind a lock) serves reads, claims and the rest. Group commit:
`append` calls queued while the writer is idle or busy are written together in
one transaction, each still fenced by its own lease check.

Claims use `FOR UPDATE SKIP LOCKED`, and lease expiry is judged by the
database's clock, so workers whose clocks disagree still never share a run.
Times are stored as epoch seconds (float), as in SQLite.

When the database goes away (a restart, `pg_terminate_backend`, a network cut), a
connection the server closed is replaced before its next use, and a call that fails
anyway raises `StoreUnavailable` at once: the next call connects again. Appends are the
exception: their callers hold what exists nowhere else yet (a tool call's result), so the
writer keeps trying them for up to `write_retry_seconds` before it gives up. Connections
are named `bosun` in `pg_stat_activity` unless the URL sets `application_name`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import select
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg
from psycopg.conninfo import conninfo_to_dict

from bosun.errors import LeaseLost, StoreError, StoreUnavailable, UnstorableEvent
from bosun.journal.audit import AuditEntry, audit_entry_for, version_registered
from bosun.journal.events import ApprovalRequested, Event
from bosun.store import budgets_sql
from bosun.store.base import (
    PAUSED,
    PENDING,
    QUEUED,
    RUNNING,
    TERMINAL_STATUSES,
    WAITING,
    WAITING_APPROVAL,
    AppendResult,
    Breaker,
    GcReport,
    KillSwitch,
    RunRecord,
    RunSummary,
    Store,
)
from bosun.store.health import Backoff, StoreHealth
from bosun.store.postgres_governance import (
    GOVERNANCE_SCHEMA,
    INSERT_APPROVAL_SQL,
    PostgresGovernance,
    insert_audit,
)
from bosun.store.postgres_observe import PostgresObserve
from bosun.store.postgres_server import SERVER_SCHEMA, PostgresServer
from bosun.store.postgres_waits import WAITS_SCHEMA, PostgresWaits, wait_rows
from bosun.store.rows import RUN_COLUMNS, EventRow, decode_row, event_rows, run_from_row
from bosun.store.trees import POSTGRES_SUBTREE

log = logging.getLogger("bosun.store")

# The database clock, as epoch seconds.
DB_NOW = "extract(epoch from clock_timestamp())::double precision"

# Advisory locks are per database; key them by schema so stores in different
# schemas of one database do not wait for each other.
_SCHEMA_LOCK = (
    "SELECT pg_advisory_xact_lock(hashtext('bosun.schema:' || coalesce(current_schema(), '')))"
)
# Writers of blob references hold this shared; gc holds it exclusively, so gc never
# deletes a blob that a transaction still in flight is about to reference.
_BLOBS_SHARED = "SELECT pg_advisory_xact_lock_shared(hashtext('bosun.blobs:' || coalesce(current_schema(), '')))"
_BLOBS_EXCLUSIVE = (
    "SELECT pg_advisory_xact_lock(hashtext('bosun.blobs:' || coalesce(current_schema(), '')))"
)

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS agent_versions (
        version TEXT PRIMARY KEY,
        agent TEXT NOT NULL,
        spec TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS runs (
        id TEXT PRIMARY KEY,
        agent TEXT NOT NULL,
        agent_version TEXT NOT NULL REFERENCES agent_versions(version),
        input TEXT NOT NULL,
        status TEXT NOT NULL,
        tenant TEXT NOT NULL,
        user_id TEXT,
        session TEXT,
        tags JSONB NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        finished_at DOUBLE PRECISION,
        steps INTEGER NOT NULL DEFAULT 0,
        tool_calls INTEGER NOT NULL DEFAULT 0,
        input_tokens BIGINT NOT NULL DEFAULT 0,
        output_tokens BIGINT NOT NULL DEFAULT 0,
        cost DOUBLE PRECISION NOT NULL DEFAULT 0,
        reason TEXT,
        output TEXT,
        last_seq INTEGER NOT NULL DEFAULT 0,
        lease_owner TEXT,
        lease_expires_at DOUBLE PRECISION,
        cancel_requested BOOLEAN NOT NULL DEFAULT false,
        journal_deleted BOOLEAN NOT NULL DEFAULT false
    )""",
    # Added after the first release of this schema: pause requests.
    "ALTER TABLE runs ADD COLUMN IF NOT EXISTS pause_requested BOOLEAN NOT NULL DEFAULT false",
    # Claims in a row that found the journal unchanged (`RunRecord.claims`).
    "ALTER TABLE runs ADD COLUMN IF NOT EXISTS claims INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE runs ADD COLUMN IF NOT EXISTS claimed_seq INTEGER NOT NULL DEFAULT 0",
    # Run trees and idempotent creation; before them every run was its own root.
    "ALTER TABLE runs ADD COLUMN IF NOT EXISTS parent_id TEXT",
    "ALTER TABLE runs ADD COLUMN IF NOT EXISTS idempotency_key TEXT",
    """DO $$ BEGIN
        ALTER TABLE runs ADD COLUMN root_id TEXT;
        UPDATE runs SET root_id = id;
    EXCEPTION WHEN duplicate_column THEN NULL; END $$""",
    *budgets_sql.POSTGRES_SCHEMA,  # run-tree budgets
    "CREATE INDEX IF NOT EXISTS runs_by_root ON runs(root_id)",
    "CREATE INDEX IF NOT EXISTS runs_by_parent ON runs(parent_id)",
    "CREATE UNIQUE INDEX IF NOT EXISTS runs_by_key ON runs(tenant, idempotency_key)"
    " WHERE idempotency_key IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS runs_by_status ON runs(status, lease_expires_at)",
    "CREATE INDEX IF NOT EXISTS runs_by_created ON runs(created_at)",
    """CREATE TABLE IF NOT EXISTS events (
        run_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        ts DOUBLE PRECISION NOT NULL,
        kind TEXT NOT NULL,
        data BYTEA NOT NULL,
        blob TEXT,
        PRIMARY KEY (run_id, seq)
    )""",
    "CREATE INDEX IF NOT EXISTS events_by_blob ON events(blob) WHERE blob IS NOT NULL",
    """CREATE TABLE IF NOT EXISTS blobs (
        hash TEXT PRIMARY KEY,
        data BYTEA NOT NULL
    )""",
]

_TERMINAL = sorted(TERMINAL_STATUSES)
# What every commit tells its writer besides the fence: the kill switches, and the breakers
# of failing tools (both tables are almost always empty).
_CONTROLS = (
    "SELECT 'k', scope, reason, set_by, set_at, NULL, NULL::int, NULL::float8, NULL::float8"
    " FROM kill_switches UNION ALL"
    " SELECT 'b', NULL, NULL, NULL, NULL::float8, key, failures, opened_at, probe_until"
    " FROM breakers ORDER BY 1, 5"
)
# A claim counts once more when the journal did not grow since the previous claim (`last_seq`
# moves with every append here).
_COUNT_CLAIM = (
    "claims = CASE WHEN claimed_seq = last_seq THEN claims + 1 ELSE 1 END, claimed_seq = last_seq"
)

_APPEND_SQL = (
    "UPDATE runs SET status=%s, steps=%s, tool_calls=%s, input_tokens=%s, output_tokens=%s,"
    " cost=%s, reason=%s, output=%s, finished_at=%s, updated_at=%s,"
    " last_seq=coalesce(%s, last_seq)"
    " WHERE id=%s AND lease_owner=%s RETURNING cancel_requested, tenant, agent, pause_requested,"
    " child_steps, child_tokens, child_cost, reserved_steps IS NOT NULL"
)
_INSERT_EVENT_SQL = (
    "INSERT INTO events(run_id, seq, ts, kind, data, blob) VALUES (%s, %s, %s, %s, %s, %s)"
)
_INSERT_BLOB_SQL = "INSERT INTO blobs(hash, data) VALUES (%s, %s) ON CONFLICT (hash) DO NOTHING"
_RUNS_JOIN = "runs r JOIN agent_versions v ON v.version = r.agent_version"


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        info = conninfo_to_dict(url)
    except psycopg.Error:
        return "<unparseable PostgreSQL URL>"
    user = info.get("user")
    host = info.get("host", "localhost")
    port = info.get("port")
    db = info.get("dbname", "")
    where = f"{host}:{port}" if port else str(host)
    return f"postgresql://{user + '@' if user else ''}{where}/{db}"


@dataclass(slots=True)
class _PendingAppend:
    run_id: str
    events: Sequence[Event]
    rows: list[EventRow]
    owner: str
    summary: RunSummary
    future: asyncio.Future[AppendResult]


class PostgresStore(PostgresGovernance, PostgresWaits, PostgresServer, PostgresObserve, Store):
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
        self._pending: list[_PendingAppend] = []
        self._in_flight: list[_PendingAppend] = []  # the batch the writer is writing
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
            async with conn.transaction():
                await conn.execute(_SCHEMA_LOCK)
                for statement in [*SCHEMA, *GOVERNANCE_SCHEMA, *SERVER_SCHEMA, *WAITS_SCHEMA]:
                    await conn.execute(statement)
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
            password = _password(self.url)
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
        if not _usable(self._conn):
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
        run.created_at = run.created_at or now
        run.updated_at = now
        run.root_id = run.root_id or run.id
        rows = event_rows(events, 1)
        run.last_seq = len(rows)
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
                await budgets_sql.postgres_write_budgets(conn, run)
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
            await conn.execute(_BLOBS_SHARED)
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
            " parent_id, root_id, idempotency_key)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s, %s, %s, %s, %s, %s)",
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
            ),
        )
        await _insert_rows(conn, [(run.id, r) for r in rows])

    async def append(
        self,
        run_id: str,
        events: Sequence[Event],
        *,
        first_seq: int,
        owner: str,
        summary: RunSummary,
    ) -> AppendResult:
        if self._conn is None or self._closing:
            raise StoreError("the store is not open: call `await store.open()` first")
        if self._writer is None or self._writer.done():
            # Never meant to happen (the loop catches everything); if it did, every append
            # from now on would wait forever for a writer that is gone.
            log.error(
                "the PostgreSQL writer of %s had stopped; starting it again", redact(self.url)
            )
            self._start_writer()
        future: asyncio.Future[AppendResult] = asyncio.get_running_loop().create_future()
        self._pending.append(
            _PendingAppend(run_id, events, event_rows(events, first_seq), owner, summary, future)
        )
        self._wakeup.set()
        return await future

    async def _write_loop(self) -> None:
        """Drain the queue: everything pending when the writer is free goes in one transaction."""
        try:
            while True:
                if not self._pending:
                    if self._closing:
                        return
                    await self._wakeup.wait()
                    self._wakeup.clear()
                    continue
                batch = self._in_flight = self._pending
                self._pending = []
                try:
                    await self._flush(batch)
                except Exception as exc:  # a bug here must not stop the writer
                    log.exception("the PostgreSQL writer failed a batch of %d", len(batch))
                    _fail(
                        batch,
                        lambda item, exc=exc: f"could not append to run {item.run_id}: {exc!r}",
                    )
                self._in_flight = []
        finally:
            # Closed or cancelled: nobody may wait forever for a writer that is gone.
            _fail(
                [*self._in_flight, *self._pending],
                lambda item: f"could not append to run {item.run_id}: the store is closing",
            )
            self._in_flight, self._pending = [], []

    async def _flush(self, batch: list[_PendingAppend]) -> None:
        """Write the batch and hand each caller its result."""
        results = await self._write_retrying(batch)
        for item, result in zip(batch, results, strict=True):
            if item.future.done():  # the caller was cancelled
                continue
            if isinstance(result, BaseException):
                item.future.set_exception(result)
            else:
                item.future.set_result(result)

    async def _write_retrying(
        self, batch: list[_PendingAppend]
    ) -> list[AppendResult | BaseException]:
        """The batch in one transaction; if a statement fails, each item alone, so one bad item
        does not fail the others. While the database cannot be used, try again (with backoff,
        up to `write_retry_seconds`): the callers wait, holding what the journal needs."""
        backoff = Backoff()
        deadline = time.monotonic() + self.write_retry_seconds
        waiting = 0  # appends counted in `health.retrying`
        try:
            while True:
                try:
                    results = await self._write_once(batch)
                    break
                except StoreUnavailable as exc:
                    error = exc
                except StoreError as exc:  # the connection broke while committing
                    return [exc for _ in batch]
                except psycopg.Error:
                    return [await self._write_alone(item) for item in batch]
                self.health.failed(f"could not append to the journal: {error}")
                delay = backoff.next()
                if self._closing or time.monotonic() + delay > deadline:
                    return [
                        StoreUnavailable(f"could not append to run {item.run_id}: {error}")
                        for item in batch
                    ]
                # Appends queued meanwhile wait with these, and go in the same transaction.
                batch.extend(self._pending)  # the same list as `_in_flight` and the caller's
                self._pending = []
                self.health.retrying += len(batch) - waiting
                waiting = len(batch)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
        finally:
            self.health.retrying -= waiting
        if waiting:
            self.health.succeeded()  # the appends that waited are in: the outage is over
        return results

    async def _write_alone(self, item: _PendingAppend) -> AppendResult | BaseException:
        try:
            return (await self._write_once([item]))[0]
        except psycopg.DataError as exc:  # this item's data, not the database
            return UnstorableEvent(f"could not append to run {item.run_id}: {exc}")
        except (psycopg.Error, StoreError) as exc:
            return StoreError(f"could not append to run {item.run_id}: {exc}")

    async def _writer_connection(self) -> psycopg.AsyncConnection:
        conn = self._writer_conn
        if conn is None or not _usable(conn):
            conn = self._writer_conn = await self._connect()
        return conn

    async def _write_once(self, batch: list[_PendingAppend]) -> list[AppendResult | BaseException]:
        """`_write_batch`, its failures told apart. When the database cannot be used it raises
        `StoreUnavailable`: nothing was written, so trying again is safe. A connection lost
        while committing raises `StoreError` instead (written or not is unknown: the runs
        continue from whatever the journal holds when they resume)."""
        self._committing = False
        try:
            return await self._write_batch(batch)
        except psycopg.OperationalError as exc:
            if self._committing and self._writer_conn is not None and self._writer_conn.broken:
                raise StoreError(
                    f"the connection to {redact(self.url)} broke while committing; whether"
                    f" the append was written is unknown: {str(exc).strip()}"
                ) from exc
            raise StoreUnavailable(str(exc).strip()) from exc

    async def _write_batch(self, batch: list[_PendingAppend]) -> list[AppendResult | BaseException]:
        conn = await self._writer_connection()
        now = time.time()
        # Lock run rows in a stable order (appends to one run keep their order) so
        # two processes' batches do not deadlock on each other.
        order = sorted(range(len(batch)), key=lambda i: batch[i].run_id)
        # cancel_requested, tenant, agent, pause_requested, child_*, holds a reservation
        owned: dict[int, tuple[Any, ...]] = {}
        async with conn.transaction():
            if any(r.blob for item in batch for r in item.rows):
                await conn.execute(_BLOBS_SHARED)
            async with conn.cursor() as cur:
                params = []
                for i in order:
                    item, s = batch[i], batch[i].summary
                    params.append(
                        (
                            s.status,
                            s.steps,
                            s.tool_calls,
                            s.input_tokens,
                            s.output_tokens,
                            s.cost,
                            s.reason,
                            s.output,
                            s.finished_at,
                            now,
                            item.rows[-1].seq if item.rows else None,
                            item.run_id,
                            item.owner,
                        )
                    )
                await cur.executemany(_APPEND_SQL, params, returning=True)
                for n, i in enumerate(order):
                    if n:
                        cur.nextset()
                    row = await cur.fetchone()
                    if row is not None:
                        owned[i] = (bool(row[0]), row[1], row[2], bool(row[3]), *row[4:])
            await _insert_rows(
                conn,
                [(batch[i].run_id, r) for i in order if i in owned for r in batch[i].rows],
            )
            await _governance_rows(
                conn, [(batch[i], owned[i][1], owned[i][2]) for i in order if i in owned]
            )
            settling = [
                (batch[i].run_id, batch[i].summary)
                for i in order
                if i in owned and owned[i][7] and budgets_sql.is_terminal(batch[i].summary)
            ]
            if settling:  # children settle their budgets with their parents
                await budgets_sql.postgres_settle(conn, settling)
            cur = await conn.execute(_CONTROLS)  # one round trip: switches and breakers
            rows = await cur.fetchall()
            switches = tuple(KillSwitch(*row[1:5]) for row in rows if row[0] == "k")
            breakers = tuple(Breaker(*row[5:]) for row in rows if row[0] == "b")
            self._committing = True  # leaving the block sends COMMIT (see `_write_once`)
        self.commits += 1
        if self.health.failing_since is not None:
            self.health.succeeded()
        return [
            AppendResult(owned[i][0], switches, owned[i][3], breakers, owned[i][4:7])
            if i in owned
            else LeaseLost(f"run {item.run_id} is no longer leased to {item.owner}")
            for i, item in enumerate(batch)
        ]

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
        where: list[str] = []
        params: list[object] = []
        for clause, value in (
            ("r.status=%s", status),
            ("r.agent=%s", agent),
            ("r.tenant=%s", tenant),
            ("r.user_id=%s", user),
            ("r.created_at>=%s", since),
            ("r.created_at<%s", until),
            ("r.parent_id=%s", parent_id),
            ("r.root_id=%s", root_id),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        if tag is not None:
            where.append("r.tags @> %s::jsonb")
            params.append(orjson.dumps({tag[0]: tag[1]}).decode())
        sql = f"SELECT {RUN_COLUMNS} FROM {_RUNS_JOIN}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY r.created_at DESC, r.id DESC LIMIT %s OFFSET %s"
        params.extend((limit, offset))
        async with self._session("list runs") as conn:
            cur = await conn.execute(sql, params)
            rows = await cur.fetchall()
        return [run_from_row(row) for row in rows]

    # -- leases ----------------------------------------------------------

    async def claim(self, worker: str, *, limit: int, lease_seconds: float) -> list[RunRecord]:
        async with self._session(f"claim runs for worker {worker}") as conn:
            cur = await conn.execute(
                f"WITH now AS (SELECT {DB_NOW} AS t),"
                " picked AS ("
                "  SELECT id FROM runs, now WHERE status=%s OR (status=%s AND"
                "  (lease_expires_at IS NULL OR lease_expires_at < now.t))"
                "  ORDER BY created_at LIMIT %s FOR UPDATE OF runs SKIP LOCKED),"
                " r AS ("
                "  UPDATE runs SET status=%s, lease_owner=%s,"
                f"  lease_expires_at=(SELECT t FROM now) + %s, updated_at=%s, {_COUNT_CLAIM}"
                "  FROM picked WHERE runs.id = picked.id RETURNING runs.*)"
                f" SELECT {RUN_COLUMNS} FROM r JOIN agent_versions v"
                " ON v.version = r.agent_version ORDER BY r.created_at",
                (QUEUED, RUNNING, limit, RUNNING, worker, lease_seconds, time.time()),
            )
            rows = await cur.fetchall()
        return [run_from_row(row) for row in rows]

    async def claim_one(
        self, worker: str, run_id: str, *, lease_seconds: float
    ) -> RunRecord | None:
        async with self._session(f"claim run {run_id} for worker {worker}") as conn:
            cur = await conn.execute(
                f"WITH r AS ("
                f" UPDATE runs SET status=%s, lease_owner=%s, lease_expires_at={DB_NOW} + %s,"
                f" updated_at=%s, {_COUNT_CLAIM} WHERE id=%s AND (status=%s OR (status=%s AND"
                f" (lease_expires_at IS NULL OR lease_expires_at < {DB_NOW}))) RETURNING *)"
                f" SELECT {RUN_COLUMNS} FROM r JOIN agent_versions v ON v.version = r.agent_version",
                (RUNNING, worker, lease_seconds, time.time(), run_id, QUEUED, RUNNING),
            )
            row = await cur.fetchone()
        return run_from_row(row) if row else None

    async def heartbeat(
        self, worker: str, run_ids: Sequence[str], lease_seconds: float
    ) -> set[str]:
        if not run_ids:
            return set()
        async with self._session(f"renew the leases of worker {worker}") as conn:
            cur = await conn.execute(
                f"UPDATE runs SET lease_expires_at={DB_NOW} + %s"
                " WHERE lease_owner=%s AND id = ANY(%s) RETURNING id",
                (lease_seconds, worker, list(run_ids)),
            )
            return {r[0] for r in await cur.fetchall()}

    async def release(self, run_id: str, worker: str) -> None:
        async with self._session(f"release run {run_id}") as conn:
            await conn.execute(
                "UPDATE runs SET lease_owner=NULL, lease_expires_at=NULL"
                " WHERE id=%s AND lease_owner=%s",
                (run_id, worker),
            )

    async def set_status(self, run_id: str, status: str, *, reason: str | None = None) -> None:
        async with self._session(f"set the status of run {run_id}") as conn:
            await conn.execute(
                "UPDATE runs SET status=%s, reason=%s, updated_at=%s"
                " WHERE id=%s AND NOT (status = ANY(%s))",
                (status, reason, time.time(), run_id, _TERMINAL),
            )

    async def request_cancel(self, run_id: str) -> bool:
        async with self._session(f"request cancel of run {run_id}") as conn:
            cur = await conn.execute(
                "UPDATE runs SET cancel_requested=true,"
                " status=CASE WHEN status IN (%s, %s, %s) THEN %s ELSE status END"
                f" WHERE id IN {POSTGRES_SUBTREE} AND NOT (status = ANY(%s)) RETURNING id",
                (PAUSED, WAITING, WAITING_APPROVAL, QUEUED, run_id, _TERMINAL),
            )
            return any(row[0] == run_id for row in await cur.fetchall())

    async def request_pause(self, run_id: str) -> bool:
        async with self._session(f"request pause of run {run_id}") as conn:
            cur = await conn.execute(
                "UPDATE runs SET pause_requested=true"
                f" WHERE id IN {POSTGRES_SUBTREE} AND NOT (status = ANY(%s)) AND status <> %s"
                " RETURNING id",
                (run_id, _TERMINAL, PAUSED),
            )
            return any(row[0] == run_id for row in await cur.fetchall())

    async def unpause(self, run_id: str) -> bool:
        async with self._session(f"unpause run {run_id}") as conn:
            cur = await conn.execute(
                "UPDATE runs SET status=%s, pause_requested=false, updated_at=%s"
                " WHERE id=%s AND status=%s RETURNING id",
                (QUEUED, time.time(), run_id, PAUSED),
            )
            return await cur.fetchone() is not None

    # -- retention -------------------------------------------------------

    async def gc(self, older_than: float) -> GcReport:
        async with self._session("collect old journals") as conn, conn.transaction():
            await conn.execute(_BLOBS_EXCLUSIVE)
            cur = await conn.execute(
                "UPDATE runs SET journal_deleted=true WHERE status = ANY(%s)"
                " AND finished_at < %s AND NOT journal_deleted RETURNING id",
                (_TERMINAL, older_than),
            )
            ids = [r[0] for r in await cur.fetchall()]
            if not ids:
                return GcReport(runs=0, events=0, blobs=0, bytes_freed=0)
            cur = await conn.execute(
                "WITH gone AS (DELETE FROM events WHERE run_id = ANY(%s)"
                " RETURNING blob, octet_length(data) AS size)"
                " SELECT count(*), coalesce(sum(size), 0),"
                " coalesce(array_agg(DISTINCT blob) FILTER (WHERE blob IS NOT NULL), '{}')"
                " FROM gone",
                (ids,),
            )
            n_events, event_bytes, candidates = await cur.fetchone()
            n_blobs = blob_bytes = 0
            if candidates:
                cur = await conn.execute(
                    "WITH gone AS (DELETE FROM blobs b WHERE b.hash = ANY(%s) AND NOT EXISTS"
                    " (SELECT 1 FROM events e WHERE e.blob = b.hash)"
                    " RETURNING octet_length(data) AS size)"
                    " SELECT count(*), coalesce(sum(size), 0) FROM gone",
                    (candidates,),
                )
                n_blobs, blob_bytes = await cur.fetchone()
        return GcReport(
            runs=len(ids),
            events=n_events,
            blobs=n_blobs,
            bytes_freed=int(event_bytes) + int(blob_bytes),
        )


async def _insert_rows(conn: psycopg.AsyncConnection, rows: list[tuple[str, EventRow]]) -> None:
    """Insert events (and their large payloads, once each) inside the caller's transaction."""
    blobs = {r.blob: r.blob_data for _, r in rows if r.blob is not None}
    async with conn.cursor() as cur:
        if blobs:
            # Sorted, so concurrent writers of the same payloads take row locks in one order.
            await cur.executemany(_INSERT_BLOB_SQL, sorted(blobs.items()))
        if rows:
            await cur.executemany(
                _INSERT_EVENT_SQL,
                [(run_id, r.seq, r.ts, r.kind, r.data, r.blob) for run_id, r in rows],
            )


async def _governance_rows(
    conn: psycopg.AsyncConnection, items: list[tuple[_PendingAppend, str, str]]
) -> None:
    """Approval rows and audit records derived from the events, in the same transaction."""
    approvals, audit = [], []
    for item, tenant, agent in items:
        for event in item.events:
            if isinstance(event, ApprovalRequested):
                approvals.append(
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
                    )
                )
            entry: AuditEntry | None = audit_entry_for(item.run_id, tenant, event, item.owner)
            if entry is not None:
                audit.append(entry)
    async with conn.cursor() as cur:
        if approvals:
            await cur.executemany(INSERT_APPROVAL_SQL, approvals)
    for item, _, _ in items:
        # Wait rows; a parked run whose waits all settled already goes straight back to the
        # queue; an ended run settles its parents' waits (store/postgres_waits.py).
        await wait_rows(conn, item.run_id, item.events, item.summary.status)
    await insert_audit(conn, audit)  # last: it takes the audit chain's lock


def _password(url: str) -> str | None:
    try:
        return conninfo_to_dict(url).get("password")
    except psycopg.Error:
        return None


def _usable(conn: psycopg.AsyncConnection) -> bool:
    """False if the connection is closed, or the server closed it while it sat idle (the
    backend was terminated, the server restarted). Found out without a round trip, from what
    the socket already holds: the server's goodbye message, then the end of the stream."""
    if conn.broken or conn.closed:
        return False
    try:
        poll = select.poll()  # not select(): it cannot watch descriptors past 1023
        poll.register(conn.fileno(), select.POLLIN)
        for _ in range(3):
            if not poll.poll(0):
                return True
            conn.pgconn.consume_input()
    except (psycopg.Error, OSError):
        return False
    return not conn.broken


def _fail(items: list[_PendingAppend], message: Callable[[_PendingAppend], str]) -> None:
    for item in items:
        if not item.future.done():
            item.future.set_exception(StoreError(message(item)))
