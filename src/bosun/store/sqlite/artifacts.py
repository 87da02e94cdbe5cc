"""Artifacts on SQLite: the bytes as files in a folder beside the database, the rows here.

A file is named by its digest (`<folder>/ab/abcdef...`), written to a temporary name,
fsynced and renamed, so a crash leaves either the whole file or none; its row (per tenant)
is written after, so a row never names a missing file. See `bosun.store.artifacts`.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import tempfile
import time
from pathlib import Path

from bosun.store import artifacts as sql
from bosun.store.artifacts import ArtifactSweep, checked, digest_of


def default_folder(db_path: str) -> str:
    """`<db>.artifacts` beside the database; a private temporary folder for `:memory:`."""
    if db_path == ":memory:" or db_path.startswith("file::memory:"):
        return tempfile.mkdtemp(prefix="bosun-artifacts-")
    return os.path.abspath(db_path) + ".artifacts"


class SqliteArtifacts:
    """Artifacts of `SqliteStore` (which provides `conn` and `artifacts_dir`)."""

    conn: sqlite3.Connection
    artifacts_dir: str

    def _file(self, digest: str) -> Path:
        hexpart = checked(digest).removeprefix("sha256:")
        return Path(self.artifacts_dir) / hexpart[:2] / hexpart

    def _write_file(self, path: Path, data: bytes) -> None:
        if path.exists() and path.stat().st_size == len(data):
            return  # stored once: the same bytes are already there
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    async def put_artifact(
        self, tenant: str, data: bytes, mime: str, *, run_id: str | None = None
    ) -> str:
        digest = digest_of(data)
        await asyncio.to_thread(self._write_file, self._file(digest), data)
        self.conn.execute(sql.INSERT_ROW, (tenant, digest, mime, len(data), time.time()))
        if run_id is not None:
            self.conn.execute(sql.INSERT_USE, (tenant, digest, run_id))
        return digest

    async def use_artifacts(self, tenant: str, run_id: str, digests: list[str]) -> None:
        self.conn.executemany(sql.INSERT_USE, [(tenant, d, run_id) for d in digests])

    async def artifact(self, tenant: str, digest: str) -> tuple[str, bytes] | None:
        try:
            path = self._file(digest)
        except ValueError:
            return None
        row = self.conn.execute(sql.READ_ROW, (tenant, digest)).fetchone()
        if row is None:
            return None
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return None
        return row[0], data

    async def sweep_artifacts(self, older_than: float, *, dry_run: bool = False) -> ArtifactSweep:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            found = self._sweep_locked(older_than)
            conn.execute("ROLLBACK" if dry_run else "COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        if not dry_run:
            self._unlink_unheld({d for _, d, _ in found})
        return ArtifactSweep(artifacts=len(found), bytes_freed=sum(n for _, _, n in found))

    def _sweep_locked(self, older_than: float) -> list[tuple[str, str, int]]:
        """Inside the caller's transaction: delete the unreferenced rows, return them."""
        conn = self.conn
        found = [tuple(r) for r in conn.execute(sql.UNREFERENCED, (older_than,)).fetchall()]
        for tenant, digest, _ in found:
            conn.execute(sql.DELETE_USES, (tenant, digest))
            conn.execute(sql.DELETE_ROW, (tenant, digest))
        return found  # type: ignore[return-value]

    def _unlink_unheld(self, digests: set[str]) -> None:
        """Remove the files of `digests` no tenant's row still names."""
        for digest in digests:
            if self.conn.execute(sql.STILL_HELD, (digest,)).fetchone() is None:
                self._file(digest).unlink(missing_ok=True)


__all__ = ["SqliteArtifacts", "default_folder"]
