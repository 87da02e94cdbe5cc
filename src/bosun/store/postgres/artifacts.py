"""Artifacts on PostgreSQL: the bytes in one `bytea` table keyed by digest (stored once),
the per-tenant rows and the runs that use them beside it. See `bosun.store.artifacts`."""

from __future__ import annotations

import time
from contextlib import AbstractAsyncContextManager
from typing import Any

import psycopg

from bosun.store import artifacts as sql
from bosun.store.artifacts import ArtifactSweep, checked, digest_of
from bosun.store.sql import pg

DATA = """CREATE TABLE IF NOT EXISTS artifact_data (
    digest TEXT PRIMARY KEY,
    data BYTEA NOT NULL
)"""
_PUT_DATA = (
    "INSERT INTO artifact_data(digest, data) VALUES (%s, %s) ON CONFLICT (digest) DO NOTHING"
)
_READ = (
    "SELECT a.mime, d.data FROM artifacts a JOIN artifact_data d ON d.digest = a.digest"
    " WHERE a.tenant = %s AND a.digest = %s"
)
_DROP_UNHELD = (
    "DELETE FROM artifact_data d WHERE d.digest = ANY(%s)"
    " AND NOT EXISTS (SELECT 1 FROM artifacts a WHERE a.digest = d.digest)"
)


class PostgresArtifacts:
    """Artifacts of `PostgresStore` (which provides `_session`)."""

    def _session(self, what: str) -> AbstractAsyncContextManager[psycopg.AsyncConnection]:
        raise NotImplementedError  # PostgresRuns provides it

    async def put_artifact(
        self, tenant: str, data: bytes, mime: str, *, run_id: str | None = None
    ) -> str:
        digest = digest_of(data)
        async with self._session(f"store artifact {digest}") as conn, conn.transaction():
            await conn.execute(_PUT_DATA, (digest, data))
            await conn.execute(pg(sql.INSERT_ROW), (tenant, digest, mime, len(data), time.time()))
            if run_id is not None:
                await conn.execute(pg(sql.INSERT_USE), (tenant, digest, run_id))
        return digest

    async def use_artifacts(self, tenant: str, run_id: str, digests: list[str]) -> None:
        if not digests:
            return
        rows = [(tenant, d, run_id) for d in digests]
        async with self._session(f"record artifacts of run {run_id}") as conn, conn.cursor() as cur:
            await cur.executemany(pg(sql.INSERT_USE), rows)

    async def artifact(self, tenant: str, digest: str) -> tuple[str, bytes] | None:
        try:
            checked(digest)
        except ValueError:
            return None
        async with self._session(f"read artifact {digest}") as conn:
            cur = await conn.execute(_READ, (tenant, digest))
            row = await cur.fetchone()
        return (row[0], bytes(row[1])) if row else None

    async def sweep_artifacts(self, older_than: float, *, dry_run: bool = False) -> ArtifactSweep:
        async with self._session("collect unreferenced artifacts") as conn:
            found = await _sweep(conn, older_than, dry_run=dry_run)
        return ArtifactSweep(artifacts=len(found), bytes_freed=sum(n for _, _, n in found))


class _DryRun(Exception):
    """Raised inside the transaction to roll it back (a dry run)."""


async def _sweep(conn: Any, older_than: float, *, dry_run: bool) -> list[tuple[str, str, int]]:
    found: list[tuple[str, str, int]] = []
    try:
        async with conn.transaction():
            found = await sweep_locked(conn, older_than)
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    return found


async def sweep_locked(conn: Any, older_than: float) -> list[tuple[str, str, int]]:
    """Inside the caller's transaction: delete the unreferenced artifacts (rows and, once
    no tenant holds them, bytes) and return (tenant, digest, bytes) of each."""
    cur = await conn.execute(pg(sql.UNREFERENCED) + " FOR UPDATE OF a", (older_than,))
    found = [(t, d, int(n)) for t, d, n in await cur.fetchall()]
    for tenant, digest, _ in found:
        await conn.execute(pg(sql.DELETE_USES), (tenant, digest))
        await conn.execute(pg(sql.DELETE_ROW), (tenant, digest))
    if found:
        await conn.execute(_DROP_UNHELD, ([d for _, d, _ in found],))
    return found


def schema_statements() -> list[str]:
    from bosun.store import ddl

    return [*sql.ddl_statements(lambda t: ddl.render(t, "postgres")), DATA]


__all__ = ["DATA", "PostgresArtifacts", "schema_statements", "sweep_locked"]
