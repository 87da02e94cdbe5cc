"""A2A push configs and their delivery outbox on SQLite. See `bosun.store.push`."""

from __future__ import annotations

import sqlite3
import time

from bosun.spec.vocab import PushStatus
from bosun.store import push as sql
from bosun.store.push import PushConfig, PushDelivery


class SqlitePush:
    """Push notifications of `SqliteStore` (which provides `conn`)."""

    conn: sqlite3.Connection

    def _transaction(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    async def put_push_config(self, config: PushConfig, first: PushDelivery | None) -> None:
        conn = self._transaction()
        try:
            key = (config.tenant, config.task_id, config.id)
            conn.execute(sql.DELETE_PENDING, key)
            conn.execute(sql.DELETE_CONFIG, key)
            conn.execute(sql.INSERT_CONFIG, config.row())
            if first is not None:
                conn.execute(sql.INSERT_DELIVERY, first.row())
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    async def push_config(self, tenant: str, task_id: str, config_id: str) -> PushConfig | None:
        row = self.conn.execute(sql.READ_CONFIG, (tenant, task_id, config_id)).fetchone()
        return PushConfig.of(row) if row else None

    async def push_configs(self, tenant: str, task_id: str) -> list[PushConfig]:
        return [PushConfig.of(r) for r in self.conn.execute(sql.TASK_CONFIGS, (tenant, task_id))]

    async def delete_push_config(self, tenant: str, task_id: str, config_id: str) -> bool:
        conn = self._transaction()
        try:
            key = (tenant, task_id, config_id)
            conn.execute(sql.DELETE_PENDING, key)
            gone = conn.execute(sql.DELETE_CONFIG, key).rowcount
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return gone > 0

    async def active_push_configs(self, limit: int) -> list[PushConfig]:
        return [PushConfig.of(r) for r in self.conn.execute(sql.ACTIVE_CONFIGS, (limit,))]

    async def record_push_state(
        self, config: PushConfig, delivery: PushDelivery, *, active: bool
    ) -> bool:
        conn = self._transaction()
        try:
            moved = conn.execute(
                sql.ADVANCE,
                (
                    delivery.state, delivery.seq, int(active), config.tenant, config.task_id,
                    config.id, delivery.seq, delivery.state,
                ),
            ).rowcount  # fmt: skip
            if moved:
                conn.execute(sql.INSERT_DELIVERY, delivery.row())
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return moved > 0

    async def due_push_deliveries(self, now: float, limit: int) -> list[PushDelivery]:
        return [PushDelivery.of(r) for r in self.conn.execute(sql.DUE, (now, limit))]

    async def claim_push_delivery(self, delivery: PushDelivery, until: float) -> bool:
        cur = self.conn.execute(sql.CLAIM, (until, delivery.id, delivery.next_at))
        return cur.rowcount > 0

    async def finish_push_delivery(
        self, delivery_id: str, status: PushStatus, next_at: float, error: str | None
    ) -> None:
        finished = None if status is PushStatus.PENDING else time.time()
        self.conn.execute(sql.FINISH, (str(status), next_at, error, finished, delivery_id))

    async def push_deliveries(self, tenant: str, task_id: str) -> list[PushDelivery]:
        rows = self.conn.execute(sql.TASK_DELIVERIES, (tenant, task_id))
        return [PushDelivery.of(r) for r in rows]
