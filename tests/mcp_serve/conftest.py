"""A real `bosun mcp serve --http` per test module and store: once on a SQLite file, once
on a fresh PostgreSQL schema (skipped when PostgreSQL is not reachable); see
mcp_serve_helpers.py."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from mcp_serve_helpers import Served, agent_args, start, stop

PG_URL = os.environ.get("BOSUN_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def store_url(request, tmp_path_factory) -> Iterator[str]:
    if request.param == "sqlite":
        yield str(tmp_path_factory.mktemp("mcp-serve") / "bosun.db")
        return
    schema = "bosun_mcp_" + uuid.uuid4().hex[:12]
    try:
        with psycopg.connect(PG_URL, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {exc}")
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(scope="module")
def served(store_url) -> Iterator[Served]:
    proc, url = start(store_url, *agent_args())
    try:
        yield Served(url, store_url)
    finally:
        stop(proc)
