"""Storage: one `Store` interface, SQLite and PostgreSQL implementations."""

from __future__ import annotations

import os

from bosun.store.base import (
    CANCELLED,
    FAILED,
    LIMIT_EXCEEDED,
    NEEDS_ATTENTION,
    PAUSED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    TERMINAL_STATUSES,
    AppendResult,
    GcReport,
    RunRecord,
    RunSummary,
    Store,
)

DEFAULT_DB = "./bosun.db"


def default_db_url() -> str:
    """`BOSUN_DB` if set, else `./bosun.db` (read here, at the edge, and passed down)."""
    return os.environ.get("BOSUN_DB") or DEFAULT_DB


def open_store(url: str | None = None) -> Store:
    """A store for a SQLite path (or `sqlite:///path`) or a `postgresql://` URL. Call `open()` next."""
    url = url or default_db_url()
    if url.startswith(("postgresql://", "postgres://")):
        from bosun.store.postgres import PostgresStore

        return PostgresStore(url)
    from bosun.store.sqlite import SqliteStore

    return SqliteStore(url.removeprefix("sqlite:///").removeprefix("sqlite://"))


__all__ = [
    "CANCELLED",
    "DEFAULT_DB",
    "FAILED",
    "LIMIT_EXCEEDED",
    "NEEDS_ATTENTION",
    "PAUSED",
    "QUEUED",
    "RUNNING",
    "SUCCEEDED",
    "TERMINAL_STATUSES",
    "AppendResult",
    "GcReport",
    "RunRecord",
    "RunSummary",
    "Store",
    "default_db_url",
    "open_store",
]
