"""A2A push configs and their delivery outbox on PostgreSQL. See `bosun.store.push`."""

from __future__ import annotations

import time
from contextlib import AbstractAsyncContextManager

import psycopg

from bosun.spec.vocab import PushStatus
from bosun.store import ddl
from bosun.store import push as sql
from bosun.store.push import PushConfig, PushDelivery
from bosun.store.sql import pg

_DELETE_PENDING = pg(sql.DELETE_PENDING)
_DELETE_CONFIG = pg(sql.DELETE_CONFIG)
_INSERT_CONFIG = pg(sql.INSERT_CONFIG)
_INSERT_DELIVERY = pg(sql.INSERT_DELIVERY)
_READ_CONFIG = pg(sql.READ_CONFIG)
_TASK_CONFIGS = pg(sql.TASK_CONFIGS)
_ACTIVE = pg(sql.ACTIVE_CONFIGS)
_ADVANCE = pg(sql.ADVANCE)
_DUE = pg(sql.DUE)
_CLAIM = pg(sql.CLAIM)
_FINISH = pg(sql.FINISH)
_TASK_DELIVERIES = pg(sql.TASK_DELIVERIES)


def schema_statements() -> list[str]:
    return sql.ddl_statements(lambda t: ddl.render(t, "postgres"))


class PostgresPush:
    """Push notifications of `PostgresStore` (which provides `_session`)."""

    def _session(self, what: str) -> AbstractAsyncContextManager[psycopg.AsyncConnection]:
        raise NotImplementedError  # PostgresRuns provides it

    async def put_push_config(self, config: PushConfig, first: PushDelivery | None) -> None:
        key = (config.tenant, config.task_id, config.id)
        async with self._session(f"save push config {config.id}") as conn, conn.transaction():
            await conn.execute(_DELETE_PENDING, key)
            await conn.execute(_DELETE_CONFIG, key)
            await conn.execute(_INSERT_CONFIG, config.row())
            if first is not None:
                await conn.execute(_INSERT_DELIVERY, first.row())

    async def push_config(self, tenant: str, task_id: str, config_id: str) -> PushConfig | None:
        async with self._session(f"read push config {config_id}") as conn:
            cur = await conn.execute(_READ_CONFIG, (tenant, task_id, config_id))
            row = await cur.fetchone()
        return PushConfig.of(row) if row else None

    async def push_configs(self, tenant: str, task_id: str) -> list[PushConfig]:
        async with self._session(f"list push configs of {task_id}") as conn:
            cur = await conn.execute(_TASK_CONFIGS, (tenant, task_id))
            return [PushConfig.of(r) for r in await cur.fetchall()]

    async def delete_push_config(self, tenant: str, task_id: str, config_id: str) -> bool:
        key = (tenant, task_id, config_id)
        async with self._session(f"delete push config {config_id}") as conn, conn.transaction():
            await conn.execute(_DELETE_PENDING, key)
            cur = await conn.execute(_DELETE_CONFIG, key)
            return cur.rowcount > 0

    async def active_push_configs(self, limit: int) -> list[PushConfig]:
        async with self._session("list active push configs") as conn:
            cur = await conn.execute(_ACTIVE, (limit,))
            return [PushConfig.of(r) for r in await cur.fetchall()]

    async def record_push_state(
        self, config: PushConfig, delivery: PushDelivery, *, active: bool
    ) -> bool:
        args = (
            delivery.state, delivery.seq, int(active), config.tenant, config.task_id, config.id,
            delivery.seq, delivery.state,
        )  # fmt: skip
        what = f"record push state of {config.task_id}"
        async with self._session(what) as conn, conn.transaction():
            cur = await conn.execute(_ADVANCE, args)
            if cur.rowcount == 0:
                return False
            await conn.execute(_INSERT_DELIVERY, delivery.row())
        return True

    async def due_push_deliveries(self, now: float, limit: int) -> list[PushDelivery]:
        async with self._session("list due push deliveries") as conn:
            cur = await conn.execute(_DUE, (now, limit))
            return [PushDelivery.of(r) for r in await cur.fetchall()]

    async def claim_push_delivery(self, delivery: PushDelivery, until: float) -> bool:
        async with self._session(f"claim push delivery {delivery.id}") as conn:
            cur = await conn.execute(_CLAIM, (until, delivery.id, delivery.next_at))
            return cur.rowcount > 0

    async def finish_push_delivery(
        self, delivery_id: str, status: PushStatus, next_at: float, error: str | None
    ) -> None:
        finished = None if status is PushStatus.PENDING else time.time()
        async with self._session(f"finish push delivery {delivery_id}") as conn:
            await conn.execute(_FINISH, (str(status), next_at, error, finished, delivery_id))

    async def push_deliveries(self, tenant: str, task_id: str) -> list[PushDelivery]:
        async with self._session(f"list push deliveries of {task_id}") as conn:
            cur = await conn.execute(_TASK_DELIVERIES, (tenant, task_id))
            return [PushDelivery.of(r) for r in await cur.fetchall()]
