"""Leases on PostgreSQL: `FOR UPDATE SKIP LOCKED` claims, judged by the database's clock."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence

import psycopg

from bosun.store import sql
from bosun.store.base import (
    QUEUED,
    RUNNING,
    RunRecord,
)
from bosun.store.postgres.errors import (
    DB_NOW,
)
from bosun.store.rows import (
    RUN_COLUMNS,
    run_from_row,
)
from bosun.store.sql import pg

_RELEASE = pg(sql.RELEASE)

log = logging.getLogger("bosun.store")

_COUNT_CLAIM = (
    "claims = CASE WHEN claimed_seq = last_seq THEN claims + 1 ELSE 1 END, claimed_seq = last_seq"
)


class PostgresLeases:
    """Claims, heartbeats and releases: a run is never handed to two live leases."""

    def _session(
        self, what: str
    ) -> contextlib.AbstractAsyncContextManager[psycopg.AsyncConnection]:
        raise NotImplementedError  # `PostgresRuns._session`

    # -- leases ----------------------------------------------------------

    async def claim(self, worker: str, *, limit: int, lease_seconds: float) -> list[RunRecord]:
        async with self._session(f"claim runs for worker {worker}") as conn:
            cur = await conn.execute(
                f"WITH now AS (SELECT {DB_NOW} AS t),"
                " picked AS ("
                "  SELECT id FROM runs, now WHERE status=%s OR (status=%s AND"
                "  (lease_expires_at IS NULL OR lease_expires_at < now.t))"
                "  ORDER BY created_at LIMIT %s FOR UPDATE OF runs SKIP LOCKED),"
                " r AS ("
                "  UPDATE runs SET status=%s, lease_owner=%s,"
                f"  lease_expires_at=(SELECT t FROM now) + %s, updated_at=%s, {_COUNT_CLAIM}"
                "  FROM picked WHERE runs.id = picked.id RETURNING runs.*)"
                f" SELECT {RUN_COLUMNS} FROM r JOIN agent_versions v"
                " ON v.version = r.agent_version ORDER BY r.created_at",
                (QUEUED, RUNNING, limit, RUNNING, worker, lease_seconds, time.time()),
            )
            rows = await cur.fetchall()
        return [run_from_row(row) for row in rows]

    async def claim_one(
        self, worker: str, run_id: str, *, lease_seconds: float
    ) -> RunRecord | None:
        async with self._session(f"claim run {run_id} for worker {worker}") as conn:
            cur = await conn.execute(
                f"WITH r AS ("
                f" UPDATE runs SET status=%s, lease_owner=%s, lease_expires_at={DB_NOW} + %s,"
                f" updated_at=%s, {_COUNT_CLAIM} WHERE id=%s AND (status=%s OR (status=%s AND"
                f" (lease_expires_at IS NULL OR lease_expires_at < {DB_NOW}))) RETURNING *)"
                f" SELECT {RUN_COLUMNS} FROM r JOIN agent_versions v ON v.version = r.agent_version",
                (RUNNING, worker, lease_seconds, time.time(), run_id, QUEUED, RUNNING),
            )
            row = await cur.fetchone()
        return run_from_row(row) if row else None

    async def heartbeat(
        self, worker: str, run_ids: Sequence[str], lease_seconds: float
    ) -> set[str]:
        if not run_ids:
            return set()
        async with self._session(f"renew the leases of worker {worker}") as conn:
            cur = await conn.execute(
                f"UPDATE runs SET lease_expires_at={DB_NOW} + %s"
                " WHERE lease_owner=%s AND id = ANY(%s) RETURNING id",
                (lease_seconds, worker, list(run_ids)),
            )
            return {r[0] for r in await cur.fetchall()}

    async def release(self, run_id: str, worker: str) -> None:
        async with self._session(f"release run {run_id}") as conn:
            await conn.execute(_RELEASE, (run_id, worker))

    # -- maintenance -----------------------------------------------------

    async def acquire(self, run_id: str, worker: str, *, lease_seconds: float) -> RunRecord | None:
        async with self._session(f"acquire run {run_id} for {worker}") as conn:
            cur = await conn.execute(
                f"WITH r AS (UPDATE runs SET lease_owner=%s, lease_expires_at={DB_NOW} + %s"
                " WHERE id=%s AND (lease_owner IS NULL OR lease_owner=%s"
                f" OR lease_expires_at IS NULL OR lease_expires_at < {DB_NOW}) RETURNING *)"
                f" SELECT {RUN_COLUMNS} FROM r JOIN agent_versions v ON v.version = r.agent_version",
                (worker, lease_seconds, run_id, worker),
            )
            row = await cur.fetchone()
        return run_from_row(row) if row else None
