"""The group-commit writer on SQLite: `create_run` and `append` calls made in the same
event-loop tick are written in one transaction (see the package's docstring for why and
what stays off a step's commit).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from bosun.errors import LeaseLost, StoreError, StoreUnavailable, UnstorableEvent
from bosun.journal.audit import (
    AuditEntry,
)
from bosun.journal.events import Event
from bosun.store import budgets_sql
from bosun.store.base import (
    RUNNING,
    AppendResult,
    RunRecord,
    RunSummary,
)
from bosun.store.health import Backoff
from bosun.store.rows import (
    event_rows,
    new_run_rows,
)
from bosun.store.sqlite import batch as batching
from bosun.store.sqlite.batch import (
    AUDIT_BATCH,
    CARRY_ON,
    OWNER_COLUMNS,
    OWNER_OF_ONE,
    UPDATE_SUMMARY,
    UPDATE_SUMMARY_AND_STATUS,
    Owner,
    Pending,
    PendingAppend,
    PendingCreate,
    Unaudited,
    fresh_summary,
    journal_adds_up,
    others_ready,
    summary_values,
)
from bosun.store.sqlite.errors import store_error

log = logging.getLogger("bosun.store")


class SqliteJournal:
    """Group commit: `create_run` and `append` calls of one loop tick share one transaction."""

    # -- writing: group commit -------------------------------------------

    async def create_run(self, run: RunRecord, events: Sequence[Event]) -> RunRecord:
        rows = new_run_rows(run, events, time.time())
        future: asyncio.Future[AppendResult] = asyncio.get_running_loop().create_future()
        create = PendingCreate(run, rows, future)
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
        item = PendingAppend(run_id, events, rows, owner, summary, future)
        try:
            return await self._commit(item)
        except StoreUnavailable as exc:
            return await self._commit_retrying(item, exc)

    async def _commit_retrying(self, item: PendingAppend, error: StoreUnavailable) -> AppendResult:
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

    async def _commit(self, item: Pending) -> AppendResult:
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
            if others_ready():
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
                    run_id = item.run.id if isinstance(item, PendingCreate) else item.run_id
                    results.append(UnstorableEvent(f"could not store run {run_id}: {exc}"))
                except Exception as exc:  # every waiter must hear back, whatever failed
                    what = (
                        f"create run {item.run.id}"
                        if isinstance(item, PendingCreate)
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

    def _write_batch(self, batch: list[Pending]) -> list[AppendResult | BaseException]:
        """One transaction, a constant number of statements whatever the batch size."""
        conn = self.conn
        now = time.time()
        waited = len(self._unaudited)  # what this batch adds is dropped again if it fails
        conn.execute("BEGIN IMMEDIATE")
        try:
            creates: list[PendingCreate] = []
            appends: list[PendingAppend] = []
            for i in batch:
                if type(i) is PendingAppend:
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
            kept: list[tuple[PendingAppend, Owner]] = []
            same: list[tuple[PendingAppend, Owner]] = []
            changed: list[tuple[PendingAppend, Owner]] = []
            behind: dict[str, tuple[int, RunSummary, int]] = {}
            journal_audit: list[Unaudited] = []
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
                        and journal_adds_up(written, summary, i.events)
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
                    UPDATE_SUMMARY, [(*summary_values(i, now), row.no) for i, row in same]
                )
            if changed:
                conn.executemany(
                    UPDATE_SUMMARY_AND_STATUS,
                    [(*summary_values(i, now), i.summary.status, row.no) for i, row in changed],
                )
            for r in blobs:
                conn.execute(
                    "INSERT OR IGNORE INTO blobs(hash, data) VALUES (?, ?)", (r.blob, r.blob_data)
                )
            conn.executemany(
                "INSERT INTO events(run, seq, ts, kind, data, blob) VALUES (?,?,?,?,?,?)", events
            )
            finished = [
                (row.no, i.summary)
                for i, row in changed
                if row.held and budgets_sql.is_terminal(i.summary)
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
                    or (was_waiting and now - self._waiting_since >= batching.CATCH_UP_DELAY)
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
                self._written[c.run.id] = fresh_summary()
        for item, _ in kept:
            if item.summary.status == RUNNING:
                self._written[item.run_id] = item.summary
            else:  # parked or finished: whoever drives it next writes its row afresh
                self._written.pop(item.run_id, None)
        results: list[AppendResult | BaseException] = []
        for item in batch:
            if isinstance(item, PendingCreate):
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
                    results.append(CARRY_ON)
            else:
                results.append(LeaseLost(f"run {item.run_id} is no longer leased to {item.owner}"))
        return results

    def _owners(self, appends: list[PendingAppend]) -> tuple[dict[str, Owner], bool]:
        """The runs appended to, read inside the write transaction (fencing by lease owner),
        and whether any kill switch is set (almost never: then the switches are not read)."""
        conn = self.conn
        if len(appends) == 1:  # the usual batch: one run's commit
            rows = conn.execute(OWNER_OF_ONE, (appends[0].run_id,)).fetchall()
        else:
            rows = []
            ids = list({item.run_id for item in appends})
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows += conn.execute(f"{OWNER_COLUMNS} IN ({marks})", chunk).fetchall()
        owners = {row[0]: Owner._make(row) for row in rows}
        return owners, not rows or bool(Owner(*rows[0]).any_switch)
