"""Artifacts: bytes kept by reference, stored once, outside the journal's rows.

A tool's 10 MB answer, a camera frame attached to a run, an image an MCP server returned:
the journal holds a small *reference* (`{"artifact": "sha256:...", "mime": ..., "bytes": N,
"name": ...}`, see `bosun.spec.media`) and the bytes live here, content-hashed, so the same
frame attached to a thousand runs is stored once. One interface, two backends: SQLite keeps
the bytes as files in a folder beside the database (`<db>.artifacts/` unless configured),
PostgreSQL in a `bytea` table. Each backend keeps a row per (tenant, digest), so a tenant
reads only what was stored for it (another tenant's digest is "not found"), and a row per
run that uses the artifact, which retention reads: `bosun gc` deletes the artifacts no
retained run references (the runs whose journals are kept).
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass

from bosun.spec.media import digest_of

ARTIFACTS = """CREATE TABLE IF NOT EXISTS artifacts (
    tenant TEXT NOT NULL,
    digest TEXT NOT NULL,
    mime TEXT NOT NULL,
    bytes {bigint} NOT NULL,
    created_at {real} NOT NULL,
    PRIMARY KEY (tenant, digest)
)"""
# Which run uses which artifact: what retention reads (a run's journal holds the reference).
ARTIFACT_USES = """CREATE TABLE IF NOT EXISTS artifact_uses (
    tenant TEXT NOT NULL,
    digest TEXT NOT NULL,
    run_id TEXT NOT NULL,
    PRIMARY KEY (tenant, digest, run_id)
)"""
ARTIFACT_USES_INDEX = "CREATE INDEX IF NOT EXISTS artifact_uses_by_run ON artifact_uses(run_id)"

# Artifacts older than the cutoff that no retained run uses (a run whose journal was
# collected, or that never got created, keeps nothing alive).
UNREFERENCED = (
    "SELECT a.tenant, a.digest, a.bytes FROM artifacts a WHERE a.created_at < ? AND NOT EXISTS"
    " (SELECT 1 FROM artifact_uses u JOIN runs r ON r.id = u.run_id"
    "  WHERE u.tenant = a.tenant AND u.digest = a.digest AND NOT r.journal_deleted)"
)
DELETE_USES = "DELETE FROM artifact_uses WHERE tenant = ? AND digest = ?"
DELETE_ROW = "DELETE FROM artifacts WHERE tenant = ? AND digest = ?"
STILL_HELD = "SELECT 1 FROM artifacts WHERE digest = ? LIMIT 1"
INSERT_ROW = (
    "INSERT INTO artifacts(tenant, digest, mime, bytes, created_at) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (tenant, digest) DO NOTHING"
)
INSERT_USE = (
    "INSERT INTO artifact_uses(tenant, digest, run_id) VALUES (?, ?, ?)"
    " ON CONFLICT (tenant, digest, run_id) DO NOTHING"
)
READ_ROW = "SELECT mime, bytes FROM artifacts WHERE tenant = ? AND digest = ?"


def ddl_statements(render: Callable[[str], str]) -> list[str]:
    """The tables, their type roles filled in by `render` (`bosun.store.ddl.render` for a
    dialect)."""
    return [render(ARTIFACTS), render(ARTIFACT_USES), ARTIFACT_USES_INDEX]


@dataclass(frozen=True, slots=True)
class ArtifactSweep:
    """What retention freed (or, with `--dry-run`, would free)."""

    artifacts: int
    bytes_freed: int


class ArtifactStore(abc.ABC):
    """Bytes by reference (see the module docstring); both backends implement these."""

    @abc.abstractmethod
    async def put_artifact(
        self, tenant: str, data: bytes, mime: str, *, run_id: str | None = None
    ) -> str:
        """Store `data` once (by its sha256) for `tenant`; returns the digest (`sha256:...`).
        With `run_id`, the run is recorded as a user of it (what keeps it past `bosun gc`)."""

    @abc.abstractmethod
    async def use_artifacts(self, tenant: str, run_id: str, digests: list[str]) -> None:
        """Record `run_id` as a user of artifacts stored before the run existed."""

    @abc.abstractmethod
    async def artifact(self, tenant: str, digest: str) -> tuple[str, bytes] | None:
        """(mime, bytes) of an artifact of `tenant`; None if it has no such artifact."""

    @abc.abstractmethod
    async def sweep_artifacts(self, older_than: float, *, dry_run: bool = False) -> ArtifactSweep:
        """Delete artifacts created before `older_than` that no retained run uses."""


def checked(digest: str) -> str:
    """`digest` if it is well formed (`sha256:` and 64 hex digits), else ValueError: it
    names a file on disk, so nothing else may reach the file store."""
    hexpart = digest.removeprefix("sha256:")
    if not digest.startswith("sha256:") or len(hexpart) != 64 or not _is_hex(hexpart):
        raise ValueError(f"{digest!r} is not an artifact reference (sha256:<64 hex digits>)")
    return digest


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)


__all__ = ["ArtifactStore", "ArtifactSweep", "checked", "ddl_statements", "digest_of"]
