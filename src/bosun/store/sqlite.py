"""Embedded SQLite store: WAL mode, group commit.

Every call runs on the event loop's thread: a WAL commit with
`synchronous=NORMAL` takes tens of microseconds, far less than a thread hop.
`synchronous=NORMAL` in WAL mode survives the process being killed at any
point (the OS holds the written pages); only a power loss can drop the last
commits, as with the peers' default settings.

Group commit: `append` calls made in the same event-loop tick are written in
one transaction, so a thousand concurrent runs share one commit.

Projections stay off a step's commit, which writes only the journal (and the
run's row when its status changes):

- Audit records of journal events (policy decisions, approvals requested, ...):
  the event is committed with the step; its hash-chained record follows within
  `CATCH_UP_DELAY` seconds, or at once when the run stops running (parks,
  pauses, finishes) or `AUDIT_BATCH` records wait. Each run's `audited_seq`
  says up to where its journal is in the chain, so a worker that takes over a
  crashed run adds what the dead one had not written yet, never twice.
- The totals in a running run's row (steps, tokens, cost, tool calls) are
  written with the same catch-up; readers add what the journal holds past the
  row's `last_seq` (see `_RUN_COLUMNS`), so every read is exact, from any process.

A database that cannot be written (a full disk, a lock held past `busy_timeout`, an I/O
error) fails the call with `StoreUnavailable`, and the store works again once the cause
is gone. An append waits instead, trying again for up to `write_retry_seconds`: its
caller holds what exists nowhere else yet (a tool call's result). Every public method
raises `StoreError`, never sqlite3's own errors (`sqlite_errors`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import orjson

from bosun.errors import LeaseLost, StoreError, StoreUnavailable, UnstorableEvent
from bosun.journal.audit import (
    AUDITED_KINDS,
    GENESIS,
    AuditEntry,
    audit_entry_for,
    chain_hash,
    needs_redaction,
    redacted,
    version_registered,
)
from bosun.journal.events import ApprovalRequested, Event
from bosun.journal.redact import Sensitivity
from bosun.spec.vocab import WaitKind, WaitStatus
from bosun.store import budgets_sql, sqlite_schema, waits_rows
from bosun.store.base import (
    APPROVED,
    DENIED,
    ESCALATED,
    EXPIRED,
    PAUSED,
    PENDING,
    QUEUED,
    RUNNING,
    TERMINAL_STATUSES,
    WAITING,
    WAITING_APPROVAL,
    ApiKey,
    AppendResult,
    ApprovalConflict,
    ApprovalRecord,
    AuditHead,
    AuditRecord,
    Breaker,
    ConsoleSession,
    GcReport,
    KillSwitch,
    RunRecord,
    RunSummary,
    Store,
)
from bosun.store.health import Backoff, StoreHealth
from bosun.store.rows import (
    KEY_COLUMNS,
    RUN_COLUMNS,
    EventRow,
    approval_audit,
    decode_row,
    event_rows,
    key_from_row,
    key_values,
    run_from_row,
    scope_tenant,
)
from bosun.store.sqlite_errors import raising_store_errors, store_error
from bosun.store.sqlite_observe import SqliteObserve
from bosun.store.sqlite_waits import SqliteWaits
from bosun.store.trees import SQLITE_SUBTREE
from bosun.store.waits_rows import dumps

log = logging.getLogger("bosun.store")

# How often commits read the breakers table again (other processes' changes show within it).
BREAKER_READ_EVERY = 0.5
# How long audit records and row totals may wait to be written, and how many records may wait.
CATCH_UP_DELAY = 1.0
AUDIT_BATCH = 256

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


@dataclass(slots=True)
class _PendingCreate:
    run: RunRecord
    rows: list[EventRow]
    future: asyncio.Future[AppendResult]
    no: int = 0  # the run's number, given when it is written
    existing: str | None = None  # its key was taken: the id of the run that has it
    refused: BaseException | None = None  # its parent had no budget left for it


class _Owner(NamedTuple):
    """A run appended to in this batch, as its row says inside the write transaction (a
    tuple: the row is taken as it comes)."""

    id: str
    no: int
    lease_owner: str | None
    cancel_requested: int
    pause_requested: int
    status: str
    tenant: str
    agent: str
    audited_seq: int
    child_steps: int  # what the run committed to its children (`budgets_sql`)
    child_tokens: int
    child_cost: float
    any_switch: int  # whether any kill switch is set, whoever it covers


_OWNER_COLUMNS = (
    "SELECT id, no, lease_owner, cancel_requested, pause_requested, status, tenant, agent,"
    " audited_seq, child_steps, child_tokens, child_cost, EXISTS (SELECT 1 FROM kill_switches)"
    " FROM runs WHERE id"
)
_OWNER_OF_ONE = _OWNER_COLUMNS + "=?"
# The events of a commit that govern something: approvals to insert, audit records to derive.
_GOVERNANCE_KINDS = AUDITED_KINDS | {"run_finished"}


@dataclass(slots=True, frozen=True)
class _Unaudited:
    """A committed journal event whose audit record is not in the chain yet."""

    run_id: str
    seq: int
    entry: AuditEntry


_Pending = _PendingAppend | _PendingCreate
_CARRY_ON = AppendResult(False, (), False)  # what nearly every commit tells its run

# A commit whose summary is the row's already (a tool result: only the journal grows) leaves
# the row alone: one page fewer to write. Readers take `last_seq` and `updated_at` from the
# journal (see _RUN_COLUMNS).
_UPDATE_SUMMARY = (
    "UPDATE runs SET steps=?, tool_calls=?, input_tokens=?, output_tokens=?, cost=?, reason=?,"
    " output=?, finished_at=?, updated_at=?, last_seq=coalesce(?, last_seq) WHERE no=?"
)
# Only when the status changes: a column of `runs_by_status` in the SET list rewrites an
# index page even when the value is the same.
_UPDATE_SUMMARY_AND_STATUS = (
    "UPDATE runs SET steps=?, tool_calls=?, input_tokens=?, output_tokens=?, cost=?, reason=?,"
    " output=?, finished_at=?, updated_at=?, last_seq=coalesce(?, last_seq), status=? WHERE no=?"
)


# A row lags behind commits that left it alone: the journal's last event (one index probe)
# has the current `last_seq` and `updated_at`, and the events past the row's `last_seq` (a
# short range of the run's index) add what the row's totals do not count yet.
_LAST_EVENT = "FROM events WHERE run = r.no ORDER BY seq DESC LIMIT 1"
_TAIL = "FROM events WHERE run = r.no AND seq > r.last_seq AND kind = "
_FIELD = "json_extract(CAST(data AS TEXT), '$.{}')"
_ANSWERS = f"{_TAIL}'model_responded'"
_COLUMN_EXPRESSIONS = {
    "r.updated_at": f"max(r.updated_at, coalesce((SELECT ts {_LAST_EVENT}), 0))",
    "r.last_seq": f"coalesce((SELECT seq {_LAST_EVENT}), r.last_seq)",
    "r.steps": f"r.steps + (SELECT count(*) {_ANSWERS})",
    "r.tool_calls": (  # a call's first start counts; a rerun after a crash is attempt 2
        f"r.tool_calls + (SELECT count(*) {_TAIL}'tool_started' AND {_FIELD.format('attempt')} = 1)"
    ),
    "r.input_tokens": (
        f"r.input_tokens + (SELECT coalesce(sum({_FIELD.format('input_tokens')}), 0) {_ANSWERS})"
    ),
    "r.output_tokens": (
        f"r.output_tokens + (SELECT coalesce(sum({_FIELD.format('output_tokens')}), 0) {_ANSWERS})"
    ),
    "r.cost": f"r.cost + (SELECT coalesce(sum({_FIELD.format('cost')}), 0.0) {_ANSWERS})",
}
_RUN_COLUMNS = ", ".join(
    _COLUMN_EXPRESSIONS.get(column.strip(), column.strip()) for column in RUN_COLUMNS.split(",")
)
assert all(c in RUN_COLUMNS.split(", ") for c in _COLUMN_EXPRESSIONS), "update _RUN_COLUMNS"
# Written at a catch-up: never over a newer summary (a worker that lost its lease may be late).
_UPDATE_BEHIND = (
    "UPDATE runs SET steps=?, tool_calls=?, input_tokens=?, output_tokens=?, cost=?,"
    " updated_at=?, last_seq=? WHERE no=? AND last_seq<?"
)


# A claim counts once more when the journal did not grow since the previous claim (the
# assignments of one UPDATE all read the row as it was, so both see the old claimed_seq).
_JOURNAL_SEQ = "coalesce((SELECT max(seq) FROM events WHERE run = runs.no), 0)"
_COUNT_CLAIM = (
    f"claims = CASE WHEN claimed_seq = {_JOURNAL_SEQ} THEN claims + 1 ELSE 1 END,"
    f" claimed_seq = {_JOURNAL_SEQ}"
)


def _journal_adds_up(before: RunSummary, after: RunSummary, events: Sequence[Event]) -> bool:
    """Whether `after` is `before` plus what these events add, counted as readers count the
    journal past a row's `last_seq` (`_COLUMN_EXPRESSIONS`): then the row may wait."""
    if (before.status, before.reason, before.output, before.finished_at) != (
        after.status,
        after.reason,
        after.output,
        after.finished_at,
    ):
        return False
    steps, calls, tokens_in, tokens_out, cost = (
        before.steps, before.tool_calls, before.input_tokens, before.output_tokens, before.cost,
    )  # fmt: skip
    for event in events:
        if event.kind == "model_responded":
            steps += 1
            tokens_in += event.input_tokens  # type: ignore[attr-defined]
            tokens_out += event.output_tokens  # type: ignore[attr-defined]
            cost += event.cost  # type: ignore[attr-defined]
        elif event.kind == "tool_started" and event.attempt == 1:  # type: ignore[attr-defined]
            calls += 1
    return (steps, calls, tokens_in, tokens_out, cost) == (
        after.steps, after.tool_calls, after.input_tokens, after.output_tokens, after.cost,
    )  # fmt: skip


def _totals(s: RunSummary) -> tuple[int, int, int, int, float]:
    return (s.steps, s.tool_calls, s.input_tokens, s.output_tokens, s.cost)


def _fresh_summary() -> RunSummary:
    return RunSummary(RUNNING, 0, 0, 0, 0, 0.0)


def _summary_values(item: _PendingAppend, now: float) -> tuple[object, ...]:
    s = item.summary
    last_seq = item.rows[-1].seq if item.rows else None
    return (
        s.steps,
        s.tool_calls,
        s.input_tokens,
        s.output_tokens,
        s.cost,
        s.reason,
        s.output,
        s.finished_at,
        now,
        last_seq,
    )


def _others_ready() -> bool:
    """Whether other callbacks wait to run in this loop tick (always assumed so on loops
    that do not expose their ready queue, as asyncio's own loops do)."""
    ready = getattr(asyncio.get_running_loop(), "_ready", None)
    return ready is None or len(ready) > 0


@raising_store_errors
class SqliteStore(SqliteObserve, SqliteWaits, Store):
    def __init__(
        self, path: str, *, busy_timeout_ms: int = 10_000, write_retry_seconds: float = 30.0
    ):
        self.path = path
        self.url = path
        self._busy_timeout_ms = busy_timeout_ms
        # How long an append waits for a database it cannot write (a full disk) before it
        # fails: by default the default lease, past which the run may be taken over anyway.
        self.write_retry_seconds = write_retry_seconds
        self.health = StoreHealth(f"SQLite database {path}")
        self._catch_up_failing = False  # the audit catch-up failed; logged once until it works
        self._conn: sqlite3.Connection | None = None
        self._pending: list[_Pending] = []
        self._flush_due = False  # a task will write `_pending` when the loop comes back to it
        # The summary this store last wrote to the row of each run it is driving: a commit that
        # would write the same values again (a tool result) leaves the row alone, one page fewer.
        self._written: dict[str, RunSummary] = {}
        # Waiting for the next catch-up (see the module docstring): audit records in journal
        # order, and the totals of running runs' rows, by run: (no, summary, last_seq).
        self._unaudited: list[_Unaudited] = []
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
            conn.execute(f"PRAGMA busy_timeout={self._busy_timeout_ms}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            sqlite_schema.prepare(conn)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open SQLite database {self.path}: {exc}") from exc
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

    # -- writing: group commit -------------------------------------------

    async def create_run(self, run: RunRecord, events: Sequence[Event]) -> RunRecord:
        now = time.time()
        run.created_at = run.created_at or now
        run.updated_at = now
        run.root_id = run.root_id or run.id
        rows = event_rows(events, 1)
        run.last_seq = len(rows)
        future: asyncio.Future[AppendResult] = asyncio.get_running_loop().create_future()
        create = _PendingCreate(run, rows, future)
        await self._commit(create)
        if create.refused is not None:
            raise create.refused
        if create.existing is None:
            return run
        existing = await self.get_run(create.existing)
        if existing is None:
            raise StoreError(f"the run with idempotency key {run.idempotency_key!r} vanished")
        return existing

    async def append(
        self,
        run_id: str,
        events: Sequence[Event],
        *,
        first_seq: int,
        owner: str,
        summary: RunSummary,
    ) -> AppendResult:
        future: asyncio.Future[AppendResult] = asyncio.get_running_loop().create_future()
        rows = event_rows(events, first_seq)
        item = _PendingAppend(run_id, events, rows, owner, summary, future)
        try:
            return await self._commit(item)
        except StoreUnavailable as exc:
            return await self._commit_retrying(item, exc)

    async def _commit_retrying(self, item: _PendingAppend, error: StoreUnavailable) -> AppendResult:
        """Queue `item` again, with backoff, until the database takes it (space was freed) or
        `write_retry_seconds` pass; then its caller gets the last error."""
        backoff = Backoff()
        deadline = time.monotonic() + self.write_retry_seconds
        self.health.retrying += 1
        try:
            while True:
                delay = backoff.next()
                if time.monotonic() + delay > deadline:
                    raise error
                await asyncio.sleep(delay)
                item.future = asyncio.get_running_loop().create_future()
                try:
                    result = await self._commit(item)
                    break
                except StoreUnavailable as exc:
                    error = exc
        finally:
            self.health.retrying -= 1
        self.health.succeeded()  # the last append to get through ends the outage
        return result

    async def _commit(self, item: _Pending) -> AppendResult:
        """Queue `item`; the first writer of a loop tick writes everything queued in that tick.

        That writer yields once (`sleep(0)`) so every run that is ready in this tick can
        queue its events too, then writes the whole batch in one transaction and returns
        its own result without another trip through the event loop. When nothing else is
        ready to run, nobody could join the batch before the loop's next poll, which the
        yield would wait for: the writer writes at once.
        """
        self._pending.append(item)
        if self._flush_due:
            return await item.future
        self._flush_due = True
        try:
            if _others_ready():
                await asyncio.sleep(0)
        except asyncio.CancelledError:
            self._flush()  # the others queued behind us must still be written
            if not item.future.cancelled():
                item.future.exception()  # seen: the caller is gone
            raise
        self._flush()
        return item.future.result()

    def _flush(self) -> None:
        """Write every pending item in one transaction; on failure, retry each alone."""
        self._flush_due = False
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
                except UnicodeEncodeError as exc:  # this item's text, not the database
                    run_id = item.run.id if isinstance(item, _PendingCreate) else item.run_id
                    results.append(UnstorableEvent(f"could not store run {run_id}: {exc}"))
                except Exception as exc:  # every waiter must hear back, whatever failed
                    what = (
                        f"create run {item.run.id}"
                        if isinstance(item, _PendingCreate)
                        else f"append to run {item.run_id}"
                    )
                    results.append(store_error(self, what, exc))
        for item, result in zip(batch, results, strict=True):
            if item.future.done():
                continue
            if isinstance(result, BaseException):
                item.future.set_exception(result)
            else:
                item.future.set_result(result)

    def _write_batch(self, batch: list[_Pending]) -> list[AppendResult | BaseException]:
        """One transaction, a constant number of statements whatever the batch size."""
        conn = self.conn
        now = time.time()
        waited = len(self._unaudited)  # what this batch adds is dropped again if it fails
        conn.execute("BEGIN IMMEDIATE")
        try:
            creates: list[_PendingCreate] = []
            appends: list[_PendingAppend] = []
            for i in batch:
                if type(i) is _PendingAppend:
                    appends.append(i)
                else:
                    creates.append(i)  # type: ignore[arg-type]
            if creates and any(c.run.idempotency_key is not None for c in creates):
                creates = self._new_keys(creates)
            if creates:
                creates = self._reserve(creates, now)
            audit: list[AuditEntry] = self._insert_runs(creates, now) if creates else []
            owners, any_switch = self._owners(appends) if appends else ({}, True)
            # One pass over the appends still leased to their writers: which row to write
            # now, which may wait, what a worker before us left unchained, the journal rows.
            kept: list[tuple[_PendingAppend, _Owner]] = []
            same: list[tuple[_PendingAppend, _Owner]] = []
            changed: list[tuple[_PendingAppend, _Owner]] = []
            behind: dict[str, tuple[int, RunSummary, int]] = {}
            journal_audit: list[_Unaudited] = []
            events = [(c.no, r.seq, r.ts, r.kind, r.data, r.blob) for c in creates for r in c.rows]
            blobs = [r for c in creates for r in c.rows if r.blob is not None]
            leaving = False  # a run stops running: everything waiting is written with it
            for i in appends:
                row = owners.get(i.run_id)
                if row is None or row.lease_owner != i.owner:
                    continue
                kept.append((i, row))
                summary = i.summary
                written = self._written.get(i.run_id)
                if written is None:  # new to us: did a worker before us leave anything?
                    journal_audit.extend(self._missed_audit(i, row))
                if summary.status != row.status:
                    changed.append((i, row))
                elif written != summary:
                    if (
                        i.rows
                        and written is not None
                        and _journal_adds_up(written, summary, i.events)
                    ):
                        behind[i.run_id] = (row.no, summary, i.rows[-1].seq)
                    else:
                        same.append((i, row))
                leaving = leaving or summary.status != RUNNING
                no = row.no
                for r in i.rows:
                    events.append((no, r.seq, r.ts, r.kind, r.data, r.blob))
                    if r.blob is not None:
                        blobs.append(r)
            if same:
                conn.executemany(
                    _UPDATE_SUMMARY, [(*_summary_values(i, now), row.no) for i, row in same]
                )
            if changed:
                conn.executemany(
                    _UPDATE_SUMMARY_AND_STATUS,
                    [(*_summary_values(i, now), i.summary.status, row.no) for i, row in changed],
                )
            for r in blobs:
                conn.execute(
                    "INSERT OR IGNORE INTO blobs(hash, data) VALUES (?, ?)", (r.blob, r.blob_data)
                )
            conn.executemany(
                "INSERT INTO events(run, seq, ts, kind, data, blob) VALUES (?,?,?,?,?,?)", events
            )
            finished = [
                (row.no, i.summary) for i, row in changed if budgets_sql.is_terminal(i.summary)
            ]
            if finished:  # children settle their budgets with their parents
                budgets_sql.sqlite_settle(conn, finished)
            for item, row in kept:
                journal_audit.extend(
                    self._governance_rows(item, tenant=row.tenant, agent=row.agent)
                )
            was_waiting = bool(self._unaudited or self._behind)
            self._unaudited.extend(journal_audit)
            catch_up = bool(audit) or (
                bool(self._unaudited or self._behind or behind)
                and (
                    leaving
                    or len(self._unaudited) >= AUDIT_BATCH
                    or (was_waiting and now - self._waiting_since >= CATCH_UP_DELAY)
                )
            )
            if catch_up:
                self._write_behind({**self._behind, **behind}, now)
                self._insert_audit(audit)
            switches = self._kill_switches() if any_switch else ()
            breakers = self._failing_breakers(now)
            conn.execute("COMMIT")
            self.commits += 1
            if self.health.failing_since is not None:
                self.health.succeeded()
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            del self._unaudited[waited:]
            raise
        if catch_up:
            self._unaudited, self._behind = [], {}
        elif journal_audit or behind:
            if not was_waiting:
                self._waiting_since = now
            self._behind.update(behind)
            self._catch_up_later()
        for i, _ in changed:
            self._behind.pop(i.run_id, None)
        for c in creates:
            if c.run.status == RUNNING and c.run.lease_owner is not None:  # driven here next
                self._written[c.run.id] = _fresh_summary()
        for item, _ in kept:
            if item.summary.status == RUNNING:
                self._written[item.run_id] = item.summary
            else:  # parked or finished: whoever drives it next writes its row afresh
                self._written.pop(item.run_id, None)
        results: list[AppendResult | BaseException] = []
        for item in batch:
            if isinstance(item, _PendingCreate):
                results.append(AppendResult(False, switches, breakers=breakers))
            elif (owner := owners.get(item.run_id)) is not None and owner.lease_owner == item.owner:
                children = (owner.child_steps, owner.child_tokens, owner.child_cost)
                if (
                    owner.cancel_requested
                    or owner.pause_requested
                    or switches
                    or breakers
                    or any(children)
                ):
                    results.append(
                        AppendResult(
                            bool(owner.cancel_requested),
                            switches,
                            bool(owner.pause_requested),
                            breakers,
                            children,
                        )
                    )
                else:
                    results.append(_CARRY_ON)
            else:
                results.append(LeaseLost(f"run {item.run_id} is no longer leased to {item.owner}"))
        return results

    def _owners(self, appends: list[_PendingAppend]) -> tuple[dict[str, _Owner], bool]:
        """The runs appended to, read inside the write transaction (fencing by lease owner),
        and whether any kill switch is set (almost never: then the switches are not read)."""
        conn = self.conn
        if len(appends) == 1:  # the usual batch: one run's commit
            rows = conn.execute(_OWNER_OF_ONE, (appends[0].run_id,)).fetchall()
        else:
            rows = []
            ids = list({item.run_id for item in appends})
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows += conn.execute(f"{_OWNER_COLUMNS} IN ({marks})", chunk).fetchall()
        owners = {row[0]: _Owner._make(row) for row in rows}
        return owners, not rows or bool(rows[0][-1])

    def _new_keys(self, creates: list[_PendingCreate]) -> list[_PendingCreate]:
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
                row = self.conn.execute(
                    "SELECT id FROM runs WHERE tenant=? AND idempotency_key=?", key
                ).fetchone()
                if row is None:
                    taken[key] = run.id
                    kept.append(create)
                    continue
                taken[key] = row[0]
            create.existing = taken[key]
        return kept

    def _reserve(self, creates: list[_PendingCreate], now: float) -> list[_PendingCreate]:
        """The creates to insert: a child whose parent has not enough budget left is refused
        (`BudgetExhausted` to its caller). Decided afresh when a batch is retried."""
        kept = []
        fits = budgets_sql.sqlite_reserve(self.conn, [c.run for c in creates], now)
        for create, fit in zip(creates, fits, strict=True):
            create.refused = None if fit else budgets_sql.sqlite_refused(create.run)
            if fit:
                kept.append(create)
        return kept

    def _insert_runs(self, creates: list[_PendingCreate], now: float) -> list[AuditEntry]:
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
            " parent_id, root_id, idempotency_key)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
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
                )
                for no, r in ((c.no, c.run) for c in creates)
            ],
        )
        budgets_sql.sqlite_write_budgets(conn, [(c.no, c.run) for c in creates])
        return audit

    def _governance_rows(
        self, item: _PendingAppend, *, tenant: str, agent: str
    ) -> list[_Unaudited]:
        """Approval rows (inserted) and audit records (returned) derived from the events."""
        conn = self.conn
        audit = []
        for event, row in zip(item.events, item.rows, strict=True):
            if event.kind not in _GOVERNANCE_KINDS:
                continue
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
                audit.append(_Unaudited(item.run_id, row.seq, entry))
        # Wait rows; a parked run whose waits all settled already goes straight back to the
        # queue; an ended run settles its parents' waits (store/sqlite_waits.py).
        self._wait_rows(item.run_id, item.events, item.summary.status)
        return audit

    def _missed_audit(self, item: _PendingAppend, owner: _Owner) -> list[_Unaudited]:
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
                missed.append(_Unaudited(item.run_id, seq, entry))
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
        rows = []
        all_entries = self._redacted([*journal, *entries])
        if not all_entries:
            return
        row = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        seq, prev = row if row else (0, GENESIS)
        for entry in all_entries:
            seq += 1
            digest = chain_hash(prev, entry)
            rows.append(
                (
                    seq,
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
            "INSERT INTO audit(seq, ts, tenant, actor, action, subject, data, prev_hash, hash)"
            " VALUES (?,?,?,?,?,?,?,?,?)",
            rows,
        )
        conn.execute(sqlite_schema.MOVE_HEAD, (seq, prev, len(rows), time.time()))
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
                _UPDATE_BEHIND,
                [(*_totals(s), now, seq, no, seq) for no, s, seq in behind.values()],
            )

    def _catch_up_later(self) -> None:
        if (
            self._catch_up_timer is None
            and (self._unaudited or self._behind)
            and self._conn is not None
        ):
            loop = asyncio.get_running_loop()
            self._catch_up_timer = loop.call_later(CATCH_UP_DELAY, self._catch_up)

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
                    CATCH_UP_DELAY,
                    exc,
                )
            self._catch_up_later()
            return
        if self._catch_up_failing:
            self._catch_up_failing = False
            log.info("audit records caught up after an outage")
        self._unaudited, self._behind = [], {}

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
            f"SELECT {_RUN_COLUMNS} FROM runs r JOIN agent_versions v ON v.version=r.agent_version"
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
        where: list[str] = []
        params: list[object] = []
        for clause, value in (
            ("r.status=?", status),
            ("r.agent=?", agent),
            ("r.tenant=?", tenant),
            ("r.user_id=?", user),
            ("r.created_at>=?", since),
            ("r.created_at<?", until),
            ("r.parent_id=?", parent_id),
            ("r.root_id=?", root_id),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        if tag is not None:
            where.append("EXISTS (SELECT 1 FROM json_each(r.tags) WHERE key=? AND value=?)")
            params.extend(tag)
        sql = (
            f"SELECT {_RUN_COLUMNS} FROM runs r JOIN agent_versions v ON v.version=r.agent_version"
        )
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
                f"UPDATE runs SET status=?, lease_owner=?, lease_expires_at=?, updated_at=?,"
                f" {_COUNT_CLAIM} WHERE id=?",
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
            f"UPDATE runs SET status=?, lease_owner=?, lease_expires_at=?, updated_at=?,"
            f" {_COUNT_CLAIM} WHERE id=? AND (status=? OR (status=? AND"
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
            "UPDATE runs SET cancel_requested=1,"
            " status=CASE WHEN status IN (?,?,?) THEN ? ELSE status END"
            f" WHERE id IN {SQLITE_SUBTREE} AND status NOT IN ({terminal}) RETURNING id",
            (PAUSED, WAITING, WAITING_APPROVAL, QUEUED, run_id),
        ).fetchall()
        return any(row[0] == run_id for row in rows)

    async def request_pause(self, run_id: str) -> bool:
        terminal = ",".join(f"'{s}'" for s in TERMINAL_STATUSES)
        rows = self.conn.execute(
            "UPDATE runs SET pause_requested=1"
            f" WHERE id IN {SQLITE_SUBTREE} AND status NOT IN ({terminal}) AND status != ?"
            " RETURNING id",
            (run_id, PAUSED),
        ).fetchall()
        return any(row[0] == run_id for row in rows)

    async def unpause(self, run_id: str) -> bool:
        rows = self.conn.execute(
            "UPDATE runs SET status=?, pause_requested=0, updated_at=? WHERE id=? AND status=?"
            " RETURNING id",
            (QUEUED, time.time(), run_id, PAUSED),
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
                    self.conn.execute(
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
                    conn.execute(
                        "UPDATE approvals SET status=?, decided_by='expiry', decided_at=?"
                        " WHERE id=?",
                        (EXPIRED, now, old.id),
                    )
                    expired = self._approvals("id=?", (old.id,))[0]
                    audit.append(approval_audit(expired, "approval_expired", "expiry", now))
                    self._settle_in_tx(old.id, WaitStatus.EXPIRED, dumps("expired"), now)
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
        self.conn.execute("DELETE FROM breakers WHERE key=?", (key,))

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
        row = self.conn.execute("SELECT opened_at FROM breakers WHERE key=?", (key,)).fetchone()
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
        rows = self.conn.execute(
            "SELECT key, failures, opened_at, probe_until FROM breakers ORDER BY key"
        ).fetchall()
        return tuple(Breaker(*row) for row in rows)

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
        sql = f"SELECT coalesce(sum({_COLUMN_EXPRESSIONS['r.cost']}), 0) FROM runs r"
        sql += " WHERE r.created_at >= ?"
        params: list[object] = [since]
        if agent is not None:
            sql += " AND r.agent=?"
            params.append(agent)
        if tenant is not None:
            sql += " AND r.tenant=?"
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

    async def audit_head(self) -> AuditHead | None:
        self._catch_up()  # what this process committed is in the chain it reads
        row = self.conn.execute("SELECT seq, hash, count, ts FROM audit_head").fetchone()
        return AuditHead(*row) if row else None

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
            f"INSERT INTO api_keys({KEY_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)",
            key_values(key),
        )

    async def get_api_key(self, key_id: str) -> ApiKey | None:
        row = self.conn.execute(
            f"SELECT {KEY_COLUMNS} FROM api_keys WHERE id=?", (key_id,)
        ).fetchone()
        return key_from_row(row) if row else None

    async def list_api_keys(self, *, tenant: str | None = None) -> list[ApiKey]:
        sql, params = f"SELECT {KEY_COLUMNS} FROM api_keys", []
        if tenant is not None:
            sql += " WHERE tenant=?"
            params.append(tenant)
        rows = self.conn.execute(sql + " ORDER BY created_at, id", params).fetchall()
        return [key_from_row(row) for row in rows]

    async def runs_by_tenant(self) -> dict[str, int]:
        rows = self.conn.execute("SELECT tenant, count(*) FROM runs GROUP BY tenant")
        return {tenant: n for tenant, n in rows}

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
