"""Triggers' shared state on SQLite (see `bosun.store.triggers`)."""

from __future__ import annotations

import sqlite3
import time

from bosun.store import triggers as sql
from bosun.store.triggers import FIELDS, TriggerRow


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

    async def claim_delivery(
        self, name: str, delivery: str, signature: str | None = None
    ) -> tuple[str, str | None]:
        cur = self.conn.execute(sql.CLAIM_DELIVERY, (name, delivery, signature, time.time()))
        if cur.rowcount > 0:
            return "new", None
        row = self.conn.execute(sql.DELIVERY, (name, delivery)).fetchone()
        if row is None:
            return "replay", None
        return "seen", row[0] or None

    async def link_delivery(self, name: str, delivery: str, run_id: str) -> bool:
        cur = self.conn.execute(sql.LINK_DELIVERY, (run_id, name, delivery))
        return cur.rowcount > 0
