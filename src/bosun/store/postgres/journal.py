"""The group-commit writer on PostgreSQL: `append` calls queued while the writer is idle or
busy are written together in one transaction, each still fenced by its own lease check.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import psycopg

from bosun.errors import LeaseLost, StoreError, StoreUnavailable, UnstorableEvent
from bosun.journal.audit import (
    AuditEntry,
    audit_entry_for,
)
from bosun.journal.emitted import cloud_event
from bosun.journal.events import ApprovalRequested, Event
from bosun.store import budgets_sql, sql
from bosun.store import triggers as triggers_sql
from bosun.store.base import (
    AppendResult,
    RunSummary,
)
from bosun.store.health import Backoff
from bosun.store.postgres.audit import insert_audit
from bosun.store.postgres.errors import (
    BLOBS_SHARED,
    redact,
    usable,
)
from bosun.store.postgres.waits import wait_rows
from bosun.store.rows import (
    EventRow,
    PendingAppend,
    approval_values,
    breaker_from_row,
    event_rows,
    kill_switch_from_row,
    summary_values,
)
from bosun.store.sql import pg
from bosun.store.triggers import emit_values

_INSERT_APPROVAL = pg(sql.INSERT_APPROVAL)
_INSERT_EMIT = pg(triggers_sql.INSERT_EMIT)

log = logging.getLogger("bosun.store")

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
_APPEND_SQL = pg(
    f"UPDATE runs SET {sql.SUMMARY_SET}, status=? WHERE id=? AND lease_owner=?"
    " RETURNING cancel_requested, tenant, agent, pause_requested,"
    " child_steps, child_tokens, child_cost, reserved_steps IS NOT NULL"
)
_INSERT_EVENT_SQL = (
    "INSERT INTO events(run_id, seq, ts, kind, data, blob) VALUES (%s, %s, %s, %s, %s, %s)"
)
_INSERT_BLOB_SQL = "INSERT INTO blobs(hash, data) VALUES (%s, %s) ON CONFLICT (hash) DO NOTHING"


class PostgresJournal:
    """The writer task and its batches."""

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
            PendingAppend(run_id, events, event_rows(events, first_seq), owner, summary, future)
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
                    fail(
                        batch,
                        lambda item, exc=exc: f"could not append to run {item.run_id}: {exc!r}",
                    )
                self._in_flight = []
        finally:
            # Closed or cancelled: nobody may wait forever for a writer that is gone.
            fail(
                [*self._in_flight, *self._pending],
                lambda item: f"could not append to run {item.run_id}: the store is closing",
            )
            self._in_flight, self._pending = [], []

    async def _flush(self, batch: list[PendingAppend]) -> None:
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
        self, batch: list[PendingAppend]
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

    async def _write_alone(self, item: PendingAppend) -> AppendResult | BaseException:
        try:
            return (await self._write_once([item]))[0]
        except psycopg.DataError as exc:  # this item's data, not the database
            return UnstorableEvent(f"could not append to run {item.run_id}: {exc}")
        except (psycopg.Error, StoreError) as exc:
            return StoreError(f"could not append to run {item.run_id}: {exc}")

    async def _writer_connection(self) -> psycopg.AsyncConnection:
        conn = self._writer_conn
        if conn is None or not usable(conn):
            conn = self._writer_conn = await self._connect()
        return conn

    async def _write_once(self, batch: list[PendingAppend]) -> list[AppendResult | BaseException]:
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

    async def _write_batch(self, batch: list[PendingAppend]) -> list[AppendResult | BaseException]:
        conn = await self._writer_connection()
        now = time.time()
        # Lock run rows in a stable order (appends to one run keep their order) so
        # two processes' batches do not deadlock on each other.
        order = sorted(range(len(batch)), key=lambda i: batch[i].run_id)
        # cancel_requested, tenant, agent, pause_requested, child_*, holds a reservation
        owned: dict[int, tuple[Any, ...]] = {}
        async with conn.transaction():
            if any(r.blob for item in batch for r in item.rows):
                await conn.execute(BLOBS_SHARED)
            async with conn.cursor() as cur:
                params = []
                for i in order:
                    item, s = batch[i], batch[i].summary
                    last_seq = item.rows[-1].seq if item.rows else None
                    params.append(
                        (*summary_values(s, now, last_seq), s.status, item.run_id, item.owner)
                    )
                await cur.executemany(_APPEND_SQL, params, returning=True)
                for n, i in enumerate(order):
                    if n:
                        cur.nextset()
                    row = await cur.fetchone()
                    if row is not None:
                        owned[i] = (bool(row[0]), row[1], row[2], bool(row[3]), *row[4:])
            await insert_rows(
                conn,
                [(batch[i].run_id, r) for i in order if i in owned for r in batch[i].rows],
            )
            await governance_rows(
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
            switches = tuple(kill_switch_from_row(row[1:5]) for row in rows if row[0] == "k")
            breakers = tuple(breaker_from_row(row[5:]) for row in rows if row[0] == "b")
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


async def insert_rows(conn: psycopg.AsyncConnection, rows: list[tuple[str, EventRow]]) -> None:
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


async def governance_rows(
    conn: psycopg.AsyncConnection, items: list[tuple[PendingAppend, str, str]]
) -> None:
    """Approval rows and audit records derived from the events, in the same transaction."""
    approvals, audit, emits = [], [], []
    for item, tenant, agent in items:
        for event in item.events:
            if isinstance(event, ApprovalRequested):
                approvals.append(approval_values(event, item.run_id, tenant, agent))
            elif event.kind == "tool_finished":  # an emit goes to the outbox, same commit
                cloud = cloud_event(event)
                if cloud is not None:
                    emits.append(emit_values(item.run_id, cloud, event.ts))
            entry: AuditEntry | None = audit_entry_for(item.run_id, tenant, event, item.owner)
            if entry is not None:
                audit.append(entry)
    if approvals:
        async with conn.cursor() as cur:
            await cur.executemany(_INSERT_APPROVAL, approvals)
    if emits:
        async with conn.cursor() as cur:
            await cur.executemany(_INSERT_EMIT, emits)
    for item, _, _ in items:
        # Wait rows; a parked run whose waits all settled already goes straight back to the
        # queue; an ended run settles its parents' waits (`postgres/waits.py`).
        await wait_rows(conn, item.run_id, item.events, item.summary.status)
    await insert_audit(conn, audit)  # last: it takes the audit chain's lock


def fail(items: list[PendingAppend], message: Callable[[PendingAppend], str]) -> None:
    for item in items:
        if not item.future.done():
            item.future.set_exception(StoreError(message(item)))
