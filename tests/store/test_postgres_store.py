"""PostgreSQL-only behaviour: connection errors and many processes opening one database."""

from __future__ import annotations

import asyncio

import pytest

from bosun.errors import StoreError
from bosun.store import open_store
from bosun.store.postgres import PostgresStore


async def test_an_unreachable_server_gives_a_store_error_naming_the_url_without_password():
    store = open_store("postgresql://bosun:s3cret-pw@127.0.0.1:1/runs")
    assert isinstance(store, PostgresStore)
    with pytest.raises(StoreError) as info:
        await store.open()
    message = str(info.value)
    assert "postgresql://bosun@127.0.0.1:1/runs" in message
    assert "s3cret-pw" not in message


async def test_many_stores_opening_a_fresh_database_at_once_all_succeed(pg_url):
    stores = [open_store(pg_url) for _ in range(8)]
    await asyncio.gather(*[s.open() for s in stores])
    try:
        assert await asyncio.gather(*[s.list_runs() for s in stores]) == [[]] * 8
    finally:
        await asyncio.gather(*[s.close() for s in stores])
