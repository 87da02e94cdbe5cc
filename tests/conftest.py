"""Shared fixtures: real SQLite files and a real PostgreSQL database, never mocks."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest

from bosun.store.base import Store
from bosun.store.sqlite import SqliteStore

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_url() -> str:
    return os.environ.get("BOSUN_TEST_POSTGRES_URL") or DEFAULT_PG_URL


def _postgres_reason() -> str | None:
    """None if PostgreSQL is reachable, else why not (shown as the skip reason)."""
    try:
        with psycopg.connect(postgres_url(), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        return (
            f"PostgreSQL not reachable at {postgres_url()} ({type(exc).__name__}: {exc}). "
            "Set BOSUN_TEST_POSTGRES_URL to a database these tests may create schemas in."
        )
    return None


_PG_REASON = _postgres_reason()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A URL whose search_path is a fresh schema, dropped after the test."""
    if _PG_REASON is not None:
        pytest.skip(_PG_REASON)
    schema = "bosun_test_" + uuid.uuid4().hex[:12]
    base = postgres_url()
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in base else "?"
    yield f"{base}{sep}options=-csearch_path%3D{schema}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def sqlite_path(tmp_path) -> str:
    return str(tmp_path / "bosun.db")


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, tmp_path) -> str:
    """Each test using this runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return str(tmp_path / "bosun.db")
    return request.getfixturevalue("pg_url")


@pytest.fixture
async def sqlite_store(sqlite_path) -> AsyncIterator[Store]:
    store = SqliteStore(sqlite_path)
    await store.open()
    yield store
    await store.close()
