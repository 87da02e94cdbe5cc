"""Triggers' shared state on SQLite (see `bosun.store.triggers`)."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator, Sequence

import orjson

from bosun.store import triggers as sql
from bosun.store.triggers import FIELDS, PendingEmit, TriggerRow


class SqliteTriggers:
    """Triggers of `SqliteStore` (which provides `conn`)."""

    conn: sqlite3.Connection

    async def ensure_trigger(self, name: str, tenant: str) -> None:
        self.conn.execute(sql.ENSURE, (name, tenant, time.time()))

    async def count_trigger(self, name: str, counter: str, n: int = 1) -> None:
        self.conn.execute(sql.count(counter), (n, time.time(), name))

    async def set_trigger_paused(self, name: str, paused: bool) -> bool:
        cur = self.conn.execute(sql.SET_PAUSED, (int(paused), time.time(), name))
        return cur.rowcount > 0

    async def triggers(self, name: str | None = None) -> list[TriggerRow]:
        if name is None:
            rows = self.conn.execute(sql.READ + " ORDER BY name").fetchall()
        else:
            rows = self.conn.execute(sql.READ_ONE, (name,)).fetchall()
        return [TriggerRow.of(dict(zip(FIELDS, r, strict=True))) for r in rows]

    async def advance_tick(self, name: str, tick: float) -> bool:
        cur = self.conn.execute(sql.ADVANCE_TICK, (tick, time.time(), name, tick))
        return cur.rowcount > 0

    async def trigger_in_flight(self, name: str, tenant: str, limit: int) -> int:
        return self.conn.execute(sql.IN_FLIGHT_SQLITE, (tenant, name, limit)).fetchone()[0]

    async def claim_deliveries(
        self, name: str, deliveries: Sequence[tuple[str, str | None]], *, received: int = 0
    ) -> list[tuple[str, str | None]]:
        now = time.time()
        claimed: list[tuple[str, str | None]] = []
        with _transaction(self.conn):
            if received:
                self.conn.execute(sql.count("received"), (received, now, name))
            for delivery, signature in deliveries:
                cur = self.conn.execute(sql.CLAIM_DELIVERY, (name, delivery, signature, now))
                if cur.rowcount > 0:
                    claimed.append(("new", None))
                    continue
                row = self.conn.execute(sql.DELIVERY, (name, delivery)).fetchone()
                claimed.append(("replay", None) if row is None else ("seen", row[0] or None))
        return claimed

    async def link_deliveries(
        self, name: str, links: Sequence[tuple[str, str]], *, deduplicated: int = 0
    ) -> list[bool]:
        with _transaction(self.conn):
            linked = [
                self.conn.execute(sql.LINK_DELIVERY, (run_id, name, delivery)).rowcount > 0
                for delivery, run_id in links
            ]
            now = time.time()
            started = sum(linked)
            if started:
                self.conn.execute(sql.count("started"), (started, now, name))
            if len(linked) - started + deduplicated:
                dup = len(linked) - started + deduplicated
                self.conn.execute(sql.count("deduplicated"), (dup, now, name))
        return linked

    async def pending_emits(self, before: float, limit: int = 100) -> list[PendingEmit]:
        rows = self.conn.execute(sql.PENDING_EMITS, (before, limit)).fetchall()
        return [PendingEmit(r[0], r[1], orjson.loads(r[2])) for r in rows]

    async def mark_emits_delivered(self, ids: Sequence[str]) -> int:
        now = time.time()
        with _transaction(self.conn):
            return sum(self.conn.execute(sql.MARK_EMIT, (now, i)).rowcount for i in ids)

    async def gc_triggers(self, older_than: float, *, dry_run: bool = False) -> tuple[int, int]:
        conn = self.conn
        if dry_run:
            (deliveries,) = conn.execute(sql.COUNT_GC_DELIVERIES, (older_than,)).fetchone()
            (emits,) = conn.execute(sql.COUNT_GC_EMITS, (older_than,)).fetchone()
            return int(deliveries), int(emits)
        with _transaction(conn):
            deliveries = conn.execute(sql.GC_DELIVERIES, (older_than,)).rowcount
            emits = conn.execute(sql.GC_EMITS, (older_than,)).rowcount
        return deliveries, emits


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
