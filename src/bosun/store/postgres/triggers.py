"""Triggers' shared state on PostgreSQL (see `bosun.store.triggers`)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager

import orjson
import psycopg

from bosun.store import triggers as sql
from bosun.store.sql import pg
from bosun.store.triggers import FIELDS, PendingEmit, TriggerRow

_ENSURE = pg(sql.ENSURE)
_COUNT = {c: pg(sql.count(c)) for c in sql.COUNTERS}
_SET_PAUSED = pg(sql.SET_PAUSED)
_READ_ALL = pg(sql.READ + " ORDER BY name")
_READ_ONE = pg(sql.READ_ONE)
_ADVANCE = pg(sql.ADVANCE_TICK)
_CLAIM = pg(sql.CLAIM_DELIVERY)
_DELIVERY = pg(sql.DELIVERY)
_LINK = pg(sql.LINK_DELIVERY)
_PENDING_EMITS = pg(sql.PENDING_EMITS)
_MARK_EMIT = pg(sql.MARK_EMIT)


def schema_statements() -> list[str]:
    from bosun.store import ddl

    return sql.ddl_statements(lambda t: ddl.render(t, "postgres"))


def emit_schema() -> list[str]:
    """The outbox of events from runs (migration 16)."""
    from bosun.store import ddl

    return sql.emit_statements(lambda t: ddl.render(t, "postgres"))


class PostgresTriggers:
    """Triggers of `PostgresStore` (which provides `_session`)."""

    def _session(self, what: str) -> AbstractAsyncContextManager[psycopg.AsyncConnection]:
        raise NotImplementedError  # PostgresRuns provides it

    async def ensure_trigger(self, name: str, tenant: str) -> None:
        async with self._session(f"register trigger {name}") as conn:
            await conn.execute(_ENSURE, (name, tenant, time.time()))

    async def count_trigger(self, name: str, counter: str, n: int = 1) -> None:
        statement = _COUNT.get(counter) or pg(sql.count(counter))  # an unknown name raises
        async with self._session(f"count {counter} of trigger {name}") as conn:
            await conn.execute(statement, (n, time.time(), name))

    async def set_trigger_paused(self, name: str, paused: bool) -> bool:
        async with self._session(f"pause trigger {name}") as conn:
            cur = await conn.execute(_SET_PAUSED, (int(paused), time.time(), name))
            return cur.rowcount > 0

    async def triggers(self, name: str | None = None) -> list[TriggerRow]:
        async with self._session("read triggers") as conn:
            if name is None:
                cur = await conn.execute(_READ_ALL)
            else:
                cur = await conn.execute(_READ_ONE, (name,))
            rows = await cur.fetchall()
        return [TriggerRow.of(dict(zip(FIELDS, r, strict=True))) for r in rows]

    async def advance_tick(self, name: str, tick: float) -> bool:
        async with self._session(f"advance schedule {name}") as conn:
            cur = await conn.execute(_ADVANCE, (tick, time.time(), name, tick))
            return cur.rowcount > 0

    async def trigger_in_flight(self, name: str, tenant: str, limit: int) -> int:
        tag = orjson.dumps({"bosun.trigger": name}).decode()
        async with self._session(f"count runs of trigger {name}") as conn:
            cur = await conn.execute(sql.IN_FLIGHT_POSTGRES, (tenant, tag, limit))
            (found,) = await cur.fetchone()
        return int(found)

    async def claim_deliveries(
        self, name: str, deliveries: Sequence[tuple[str, str | None]], *, received: int = 0
    ) -> list[tuple[str, str | None]]:
        now = time.time()
        claimed: list[tuple[str, str | None]] = []
        async with (
            self._session(f"claim deliveries of trigger {name}") as conn,
            conn.transaction(),
        ):
            if received:
                await conn.execute(_COUNT["received"], (received, now, name))
            for delivery, signature in deliveries:
                cur = await conn.execute(_CLAIM, (name, delivery, signature, now))
                if cur.rowcount > 0:
                    claimed.append(("new", None))
                    continue
                cur = await conn.execute(_DELIVERY, (name, delivery))
                row = await cur.fetchone()
                claimed.append(("replay", None) if row is None else ("seen", row[0] or None))
        return claimed

    async def link_deliveries(
        self, name: str, links: Sequence[tuple[str, str]], *, deduplicated: int = 0
    ) -> list[bool]:
        async with (
            self._session(f"link deliveries of trigger {name}") as conn,
            conn.transaction(),
        ):
            linked = []
            for delivery, run_id in links:
                cur = await conn.execute(_LINK, (run_id, name, delivery))
                linked.append(cur.rowcount > 0)
            now = time.time()
            started = sum(linked)
            if started:
                await conn.execute(_COUNT["started"], (started, now, name))
            dup = len(linked) - started + deduplicated
            if dup:
                await conn.execute(_COUNT["deduplicated"], (dup, now, name))
        return linked

    async def pending_emits(self, before: float, limit: int = 100) -> list[PendingEmit]:
        async with self._session("read pending emits") as conn:
            cur = await conn.execute(_PENDING_EMITS, (before, limit))
            rows = await cur.fetchall()
        return [PendingEmit(r[0], r[1], orjson.loads(r[2])) for r in rows]

    async def mark_emits_delivered(self, ids: Sequence[str]) -> int:
        now = time.time()
        async with self._session("mark emits delivered") as conn, conn.transaction():
            marked = 0
            for emit_id in ids:
                cur = await conn.execute(_MARK_EMIT, (now, emit_id))
                marked += cur.rowcount
        return marked

    async def gc_triggers(self, older_than: float, *, dry_run: bool = False) -> tuple[int, int]:
        async with self._session("collect trigger deliveries") as conn, conn.transaction():
            if dry_run:
                cur = await conn.execute(pg(sql.COUNT_GC_DELIVERIES), (older_than,))
                (deliveries,) = await cur.fetchone()
                cur = await conn.execute(pg(sql.COUNT_GC_EMITS), (older_than,))
                (emits,) = await cur.fetchone()
                return int(deliveries), int(emits)
            cur = await conn.execute(pg(sql.GC_DELIVERIES), (older_than,))
            deliveries = cur.rowcount
            cur = await conn.execute(pg(sql.GC_EMITS), (older_than,))
            return deliveries, cur.rowcount
