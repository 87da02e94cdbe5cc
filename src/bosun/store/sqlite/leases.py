"""Leases on SQLite: claim, heartbeat, release, acquire (one writer at a time holds the database)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from bosun.store import sql
from bosun.store.base import (
    QUEUED,
    RUNNING,
    RunRecord,
)
from bosun.store.sqlite.batch import (
    COUNT_CLAIM,
)

log = logging.getLogger("bosun.store")


class SqliteLeases:
    """Claims, heartbeats and releases: a run is never handed to two live leases."""

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
                f" {COUNT_CLAIM} WHERE id=?",
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
            f" {COUNT_CLAIM} WHERE id=? AND (status=? OR (status=? AND"
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
        self.conn.execute(sql.RELEASE, (run_id, worker))

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
