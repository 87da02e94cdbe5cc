"""Durable waits on PostgreSQL: a mixin of `PostgresStore` (which provides `_session`), and
the hook its append runs inside the writer's transaction (`wait_rows`).

Ordering, so no wake-up is lost between processes: every delivery locks the waiting run's
row (`FOR UPDATE`) before it looks at the run's waits. The append that parks a run holds
that row too (it writes the run's status), so a delivery and a park serialise: either the
delivery sees the run parked and wakes it, or the park sees the wait settled and requeues
the run itself. The statements are the shared ones in `waits_rows.py`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Collection, Sequence
from typing import Any

import psycopg

from bosun.errors import RunAlreadyFinished, RunNotFound
from bosun.journal.events import Event, WaitRequested
from bosun.spec.vocab import PARKED_STATUSES, TERMINAL_STATUSES, WaitKind, WaitStatus
from bosun.store import waits_rows as sql
from bosun.store.rules import wakes
from bosun.store.waits_rows import WaitRecord, pg, wait_from_row

WAITS_SCHEMA = [
    s.strip() for s in sql.WAITS_DDL.format(serial="BIGSERIAL PRIMARY KEY").split(";") if s.strip()
] + [sql.WAITS_FOR_PENDING_APPROVALS]

_INSERT, _SETTLE = pg(sql.INSERT), pg(sql.SETTLE)
_WAKE_FACTS, _REQUEUE = pg(sql.WAKE_FACTS), pg(sql.REQUEUE)
_WAKE_FOR_KILL = pg(sql.WAKE_FOR_KILL)
_ENDED_HAS_WAITS = pg(sql.ENDED_HAS_WAITS)
_PENDING_CHILDREN = pg(sql.PENDING_CHILDREN)


async def wake(
    conn: psycopg.AsyncConnection, run_id: str, now: float, answered_children: int = 0
) -> None:
    """Apply the wake rule (`rules.wakes`) to the run, whose row the caller holds locked."""
    cur = await conn.execute(_WAKE_FACTS, (run_id, run_id))
    status, pending = await cur.fetchone()
    if wakes(status, pending, answered_children):
        await conn.execute(_REQUEUE, (now, run_id))


_LOCK_RUN = "SELECT status FROM runs WHERE id=%s FOR UPDATE"


async def settle_in_tx(
    conn: psycopg.AsyncConnection, wait_id: str, status: str, result: str | None, now: float
) -> bool:
    """THE wake path, inside the caller's transaction: lock the waiting run, settle the wait
    if it is still pending, queue the run if it waits for nothing else. False: lost the race."""
    cur = await conn.execute("SELECT run_id FROM waits WHERE id=%s", (wait_id,))
    found = await cur.fetchone()
    if found is None:
        return False
    await conn.execute(_LOCK_RUN, (found[0],))
    cur = await conn.execute(_SETTLE, (status, result, now, wait_id))
    settled = await cur.fetchone()
    if settled is None:
        return False
    await wake(conn, found[0], now, int(settled[1] == WaitKind.CHILD))
    return True


async def _answered(conn: psycopg.AsyncConnection, run_id: str, children: int) -> int:
    """How many of the child waits a parking run has open settled already."""
    if not children:
        return 0
    cur = await conn.execute(_PENDING_CHILDREN, (run_id,))
    return children - (await cur.fetchone())[0]


async def wait_rows(
    conn: psycopg.AsyncConnection, run_id: str, events: Sequence[Event], status: str
) -> None:
    """In the append's transaction (the run's row is locked by it): create the waits the
    events request, settle those whose answer is there already, requeue a parked run whose
    waits all settled, and settle the waits of parents on a run that ended."""
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
            await conn.execute(_INSERT, params)
            if isinstance(event, WaitRequested):
                await _settle_early(conn, run_id, event, now)
    if status in PARKED_STATUSES:
        await wake(conn, run_id, now, await _answered(conn, run_id, sql.parked_children(events)))
    elif status in TERMINAL_STATUSES:
        cur = await conn.execute(_ENDED_HAS_WAITS, (run_id, run_id))
        if not (await cur.fetchone())[0]:
            return
        await conn.execute(pg(sql.CANCEL), (now, run_id))
        await conn.execute(pg(sql.CANCEL_APPROVALS), (now, run_id))
        cur = await conn.execute(pg(sql.KEYED_WAITS), (WaitKind.CHILD, run_id))
        waiting = [wait_from_row(r) for r in await cur.fetchall()]
        if waiting:
            cur = await conn.execute(pg(sql.CHILD_OUTCOME), (run_id,))
            result = sql.dumps(sql.child_result(await cur.fetchone()))
            for w in waiting:
                await settle_in_tx(conn, w.id, WaitStatus.SETTLED, result, now)


async def _settle_early(
    conn: psycopg.AsyncConnection, run_id: str, event: WaitRequested, now: float
) -> None:
    if event.wait_kind == WaitKind.SIGNAL:
        cur = await conn.execute(pg(sql.TAKE_SIGNAL), (run_id, event.key))
        row = await cur.fetchone()
        if row is not None:
            await conn.execute(_SETTLE, (WaitStatus.SETTLED, row[0], now, event.wait_id))
    elif event.wait_kind == WaitKind.CHILD:
        cur = await conn.execute(pg(sql.CHILD_OUTCOME), (event.key,))
        row = await cur.fetchone()
        if row is not None and row[1] in TERMINAL_STATUSES:
            result = sql.dumps(sql.child_result(row))
            await conn.execute(_SETTLE, (WaitStatus.SETTLED, result, now, event.wait_id))


class PostgresWaits:
    """The waits methods of `PostgresStore`."""

    def _session(
        self, what: str
    ) -> contextlib.AbstractAsyncContextManager[psycopg.AsyncConnection]:
        raise NotImplementedError

    async def settle_wait(
        self, wait_id: str, result: Any = None, *, status: str = WaitStatus.SETTLED
    ) -> bool:
        async with self._session(f"settle wait {wait_id}") as conn, conn.transaction():
            return await settle_in_tx(conn, wait_id, status, sql.dumps(result), time.time())

    async def deliver_signal(self, run_id: str, name: str, payload: Any = None) -> str | None:
        now = time.time()
        async with self._session(f"signal run {run_id}") as conn, conn.transaction():
            cur = await conn.execute(_LOCK_RUN, (run_id,))
            row = await cur.fetchone()
            if row is None:
                raise RunNotFound(f"no run {run_id!r}")
            if row[0] in TERMINAL_STATUSES:
                raise RunAlreadyFinished(
                    f"run {run_id} is {row[0]}: it waits for nothing, signal {name!r} not sent"
                )
            cur = await conn.execute(pg(sql.SIGNAL_WAIT), (run_id, name))
            waiting = await cur.fetchone()
            data = sql.dumps(payload)
            if waiting is not None:
                await settle_in_tx(conn, waiting[0], WaitStatus.SETTLED, data, now)
                return str(waiting[0])
            await conn.execute(pg(sql.KEEP_SIGNAL), (run_id, name, data, now))
            return None

    async def complete_remote(self, remote_id: str, result: Any = None) -> list[str]:
        now = time.time()
        what = f"complete remote task {remote_id}"
        async with self._session(what) as conn, conn.transaction():
            cur = await conn.execute(pg(sql.KEYED_WAITS), (WaitKind.REMOTE, remote_id))
            data = sql.dumps(result)
            return [
                w.id
                for w in [wait_from_row(r) for r in await cur.fetchall()]
                if await settle_in_tx(conn, w.id, WaitStatus.SETTLED, data, now)
            ]

    async def remote_waits(self, prefix: str, limit: int = 500) -> list[WaitRecord]:
        async with self._session("read pending remote waits") as conn:
            cur = await conn.execute(pg(sql.REMOTE_WAITS), (sql.like_prefix(prefix), limit))
            return [wait_from_row(r) for r in await cur.fetchall()]

    async def waits(self, run_id: str) -> list[WaitRecord]:
        async with self._session(f"read the waits of run {run_id}") as conn:
            cur = await conn.execute(
                f"SELECT {sql.WAIT_COLUMNS} FROM waits WHERE run_id=%s ORDER BY created_at, id",
                (run_id,),
            )
            return [wait_from_row(r) for r in await cur.fetchall()]

    async def get_wait(self, wait_id: str) -> WaitRecord | None:
        async with self._session(f"read wait {wait_id}") as conn:
            cur = await conn.execute(
                f"SELECT {sql.WAIT_COLUMNS} FROM waits WHERE id=%s", (wait_id,)
            )
            row = await cur.fetchone()
        return wait_from_row(row) if row else None

    async def settled_waits(self, run_id: str, among: Collection[str]) -> list[WaitRecord]:
        async with self._session(f"read the settled waits of run {run_id}") as conn:
            cur = await conn.execute(pg(sql.SETTLED_IDS), (run_id,))
            ids = [i for (i,) in await cur.fetchall() if i in among]
            if not ids:
                return []
            cur = await conn.execute(
                f"SELECT {sql.WAIT_COLUMNS} FROM waits WHERE id = ANY(%s)", (ids,)
            )
            return [wait_from_row(r) for r in await cur.fetchall()]

    async def due_waits(self, now: float) -> list[WaitRecord]:
        async with self._session("read due waits") as conn:
            cur = await conn.execute(pg(sql.DUE), (now,))
            return [wait_from_row(r) for r in await cur.fetchall()]

    async def child_outcome(self, run_id: str) -> dict[str, Any] | None:
        async with self._session(f"read the outcome of run {run_id}") as conn:
            cur = await conn.execute(pg(sql.CHILD_OUTCOME), (run_id,))
            row = await cur.fetchone()
        return sql.child_result(row) if row else None

    async def cancel_waits(self, run_id: str) -> None:
        async with self._session(f"cancel the waits of run {run_id}") as conn:
            await conn.execute(pg(sql.CANCEL), (time.time(), run_id))

    async def wake_for_kill(self, run_id: str) -> bool:
        async with self._session(f"wake run {run_id} for its kill switch") as conn:
            cur = await conn.execute(_WAKE_FOR_KILL, (time.time(), run_id))
            return await cur.fetchone() is not None


__all__ = ["WAITS_SCHEMA", "PostgresWaits", "settle_in_tx", "wait_rows"]
