"""Durable waits on SQLite: a mixin of `SqliteStore` (which provides `conn`).

Every write here is one `BEGIN IMMEDIATE` transaction, so deliveries from any number of
processes serialise on the database: of two racing deliveries to one wait, the second
finds it settled. `_wait_rows` runs inside the group commit's transaction (see
`SqliteStore._governance_rows`): a wait's row is created with the event that requests it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Collection, Sequence
from typing import Any

from bosun.errors import RunAlreadyFinished, RunNotFound
from bosun.journal.events import Event, WaitRequested
from bosun.spec.vocab import PARKED_STATUSES, TERMINAL_STATUSES, WaitKind, WaitStatus
from bosun.store import waits_rows as sql
from bosun.store.rules import wakes
from bosun.store.waits_rows import WaitRecord, wait_from_row


class SqliteWaits:
    """The waits methods of `SqliteStore`."""

    @property
    def conn(self) -> sqlite3.Connection:
        raise NotImplementedError

    # -- inside the append's transaction -------------------------------------

    def _wait_rows(self, run_id: str, events: Sequence[Event], status: str) -> None:
        """Create the rows of the waits `events` request; when the run parks, wake it at once
        if nothing it waits on is pending; when it ends, settle whoever waits on it."""
        conn = self.conn
        quiet = status not in PARKED_STATUSES and status not in TERMINAL_STATUSES
        if quiet:  # a plain loop: this runs on every commit, a generator costs more
            for event in events:
                if event.kind in sql.WAIT_EVENT_KINDS:
                    break
            else:
                return  # the common commit: no wait requested, the run neither parks nor ends
        now = time.time()
        for event in events:
            params = sql.insert_params(run_id, event, now)
            if params is not None:
                conn.execute(sql.INSERT, params)
                if isinstance(event, WaitRequested):
                    self._settle_early(run_id, event, now)
        if status in PARKED_STATUSES:
            self._wake(run_id, now, self._answered(run_id, sql.parked_children(events)))
        elif status in TERMINAL_STATUSES:
            self._ended(run_id, now)

    def _settle_early(self, run_id: str, event: WaitRequested, now: float) -> None:
        """What the wait is for may be there already: a signal sent before anyone waited,
        a child that has finished."""
        conn = self.conn
        if event.wait_kind == WaitKind.SIGNAL:
            row = conn.execute(sql.TAKE_SIGNAL, (run_id, event.key)).fetchone()
            if row is not None:
                conn.execute(sql.SETTLE, (WaitStatus.SETTLED, row[0], now, event.wait_id))
        elif event.wait_kind == WaitKind.CHILD:
            row = conn.execute(sql.CHILD_OUTCOME, (event.key,)).fetchone()
            if row is not None and row[1] in TERMINAL_STATUSES:
                result = sql.dumps(sql.child_result(row))
                conn.execute(sql.SETTLE, (WaitStatus.SETTLED, result, now, event.wait_id))

    def _answered(self, run_id: str, children: int) -> int:
        """How many of the child waits a parking run has open settled already."""
        if not children:
            return 0
        return children - self.conn.execute(sql.PENDING_CHILDREN, (run_id,)).fetchone()[0]

    def _ended(self, run_id: str, now: float) -> None:
        """The run ended: its own waits are cancelled, and its parents' waits on it settle."""
        conn = self.conn
        if not conn.execute(sql.ENDED_HAS_WAITS, (run_id, run_id)).fetchone()[0]:
            return
        conn.execute(sql.CANCEL, (now, run_id))
        conn.execute(sql.CANCEL_APPROVALS, (now, run_id))
        waiting = conn.execute(sql.KEYED_WAITS, (WaitKind.CHILD, run_id)).fetchall()
        if waiting:
            row = conn.execute(sql.CHILD_OUTCOME, (run_id,)).fetchone()
            result = sql.dumps(sql.child_result(row))
            for w in map(wait_from_row, waiting):
                self._settle_in_tx(w.id, WaitStatus.SETTLED, result, now)

    def _settle_in_tx(self, wait_id: str, status: str, result: str | None, now: float) -> bool:
        """THE wake path, inside the caller's transaction: settle the wait if it is still
        pending, then queue its run if it waits for nothing else. False: someone else won."""
        row = self.conn.execute(sql.SETTLE, (status, result, now, wait_id)).fetchone()
        if row is None:
            return False
        self._wake(row[0], now, int(row[1] == WaitKind.CHILD))
        return True

    def _wake(self, run_id: str, now: float, answered_children: int = 0) -> None:
        """Apply the wake rule to the run, inside the caller's write transaction."""
        status, pending = self.conn.execute(sql.WAKE_FACTS, (run_id, run_id)).fetchone()
        if wakes(status, pending, answered_children):
            self.conn.execute(sql.REQUEUE, (now, run_id))

    # -- public ----------------------------------------------------------------

    async def settle_wait(
        self, wait_id: str, result: Any = None, *, status: str = WaitStatus.SETTLED
    ) -> bool:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            won = self._settle_in_tx(wait_id, status, sql.dumps(result), time.time())
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return won

    async def deliver_signal(self, run_id: str, name: str, payload: Any = None) -> str | None:
        conn = self.conn
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute("SELECT status FROM runs WHERE id=?", (run_id,)).fetchone()
            if row is None:
                raise RunNotFound(f"no run {run_id!r}")
            if row[0] in TERMINAL_STATUSES:
                raise RunAlreadyFinished(
                    f"run {run_id} is {row[0]}: it waits for nothing, signal {name!r} not sent"
                )
            waiting = conn.execute(sql.SIGNAL_WAIT, (run_id, name)).fetchone()
            data = sql.dumps(payload)
            if waiting is not None:
                self._settle_in_tx(waiting[0], WaitStatus.SETTLED, data, now)
            else:  # kept for the next wait of this name
                conn.execute(sql.KEEP_SIGNAL, (run_id, name, data, now))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return waiting[0] if waiting is not None else None

    async def complete_remote(self, remote_id: str, result: Any = None) -> list[str]:
        conn = self.conn
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        try:
            rows = conn.execute(sql.KEYED_WAITS, (WaitKind.REMOTE, remote_id)).fetchall()
            data = sql.dumps(result)
            won = [
                w.id
                for w in map(wait_from_row, rows)
                if self._settle_in_tx(w.id, WaitStatus.SETTLED, data, now)
            ]
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return won

    async def remote_waits(self, prefix: str, limit: int = 500) -> list[WaitRecord]:
        rows = self.conn.execute(sql.REMOTE_WAITS, (sql.like_prefix(prefix), limit)).fetchall()
        return [wait_from_row(r) for r in rows]

    async def waits(self, run_id: str) -> list[WaitRecord]:
        rows = self.conn.execute(
            f"SELECT {sql.WAIT_COLUMNS} FROM waits WHERE run_id=? ORDER BY created_at, id",
            (run_id,),
        ).fetchall()
        return [wait_from_row(r) for r in rows]

    async def get_wait(self, wait_id: str) -> WaitRecord | None:
        row = self.conn.execute(
            f"SELECT {sql.WAIT_COLUMNS} FROM waits WHERE id=?", (wait_id,)
        ).fetchone()
        return wait_from_row(row) if row else None

    async def settled_waits(self, run_id: str, among: Collection[str]) -> list[WaitRecord]:
        conn = self.conn
        ids = [i for (i,) in conn.execute(sql.SETTLED_IDS, (run_id,)).fetchall() if i in among]
        if not ids:
            return []
        marks = ", ".join("?" * len(ids))
        rows = conn.execute(f"SELECT {sql.WAIT_COLUMNS} FROM waits WHERE id IN ({marks})", ids)
        return [wait_from_row(r) for r in rows.fetchall()]

    async def due_waits(self, now: float) -> list[WaitRecord]:
        return [wait_from_row(r) for r in self.conn.execute(sql.DUE, (now,)).fetchall()]

    async def child_outcome(self, run_id: str) -> dict[str, Any] | None:
        row = self.conn.execute(sql.CHILD_OUTCOME, (run_id,)).fetchone()
        return sql.child_result(row) if row else None

    async def cancel_waits(self, run_id: str) -> None:
        self.conn.execute(sql.CANCEL, (time.time(), run_id))

    async def wake_for_kill(self, run_id: str) -> bool:
        return self.conn.execute(sql.WAKE_FOR_KILL, (time.time(), run_id)).fetchone() is not None


# The waits and signals tables (layout 8), statement by statement: run inside a migration's
# transaction (`executescript` would commit it).
DDL_STATEMENTS = [
    s.strip() for s in sql.WAITS_DDL.format(serial="INTEGER PRIMARY KEY").split(";") if s.strip()
]


__all__ = ["DDL_STATEMENTS", "SqliteWaits"]
