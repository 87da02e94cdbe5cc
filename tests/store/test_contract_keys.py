"""Store contract for the control plane: API keys, console sessions and the run filters the
HTTP API relies on for tenant isolation. Every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator

import pytest

from bosun.journal.events import RunStarted
from bosun.store import RunRecord, Store, open_store
from bosun.store.base import ApiKey, ConsoleSession


@pytest.fixture
async def store(db_url) -> AsyncIterator[Store]:
    store = open_store(db_url)
    await store.open()
    yield store
    await store.close()


def key(key_id: str, tenant: str = "acme", role: str = "viewer", at: float = 1000.0) -> ApiKey:
    return ApiKey(
        id=key_id, tenant=tenant, role=role, name=f"{key_id} key", hash="h" * 64, created_at=at
    )


def run(run_id: str, *, tenant: str, user: str | None = None, at: float, **tags: str):
    record = RunRecord(
        id=run_id,
        agent="support",
        agent_version="support-v1",
        input="hi",
        spec={"name": "support"},
        tenant=tenant,
        user=user,
        tags=dict(tags),
        created_at=at,
    )
    event = RunStarted(ts=at, agent="support", agent_version="support-v1", input="hi")
    return record, [event]


async def test_api_keys_round_trip_with_every_field(store):
    await store.create_api_key(key("k1", role="admin", at=1000.0))
    got = await store.get_api_key("k1")
    assert got == key("k1", role="admin", at=1000.0)
    assert await store.get_api_key("nope") is None
    sam = dataclasses.replace(key("k2", role="approver"), approves=("supervisor", "finance"))
    await store.create_api_key(sam)
    assert await store.get_api_key("k2") == sam
    assert [k.approves for k in await store.list_api_keys()] == [(), ("supervisor", "finance")]


async def test_api_keys_list_oldest_first_and_by_tenant(store):
    await store.create_api_key(key("k2", tenant="beta", at=2000.0))
    await store.create_api_key(key("k1", tenant="acme", at=1000.0))
    await store.create_api_key(key("k3", tenant="acme", at=3000.0))
    assert [k.id for k in await store.list_api_keys()] == ["k1", "k2", "k3"]
    assert [k.id for k in await store.list_api_keys(tenant="acme")] == ["k1", "k3"]
    assert await store.list_api_keys(tenant="nobody") == []


async def test_revoking_a_key_is_once_and_ends_its_console_sessions(store):
    await store.create_api_key(key("k1"))
    await store.create_api_key(key("k2"))
    now = time.time()
    for token, key_id in (("t1", "k1"), ("t2", "k2")):
        await store.create_console_session(ConsoleSession(token, key_id, "csrf", now, now + 60))
    assert await store.revoke_api_key("k1", now=now)
    assert not await store.revoke_api_key("k1", now=now + 1)
    assert not await store.revoke_api_key("missing", now=now)
    assert (await store.get_api_key("k1")).revoked_at == now
    assert await store.get_console_session("t1", now=now) is None
    assert (await store.get_console_session("t2", now=now)).key_id == "k2"


async def test_touching_a_key_records_its_last_use(store):
    await store.create_api_key(key("k1"))
    await store.touch_api_key("k1", now=1234.5)
    assert (await store.get_api_key("k1")).last_used_at == 1234.5


async def test_console_sessions_expire_and_end_on_logout(store):
    await store.create_console_session(ConsoleSession("live", "k1", "c1", 100.0, 200.0))
    await store.create_console_session(ConsoleSession("old", "k1", "c2", 10.0, 20.0))
    assert await store.get_console_session("live", now=150.0) == ConsoleSession(
        "live", "k1", "c1", 100.0, 200.0
    )
    assert await store.get_console_session("live", now=250.0) is None
    assert await store.get_console_session("old", now=15.0) is not None
    await store.delete_console_session("live")
    assert await store.get_console_session("live", now=150.0) is None
    assert await store.get_console_session("old", now=15.0) is None  # expired ones swept


async def test_list_runs_filters_by_tenant_user_tag_and_time_and_pages(store):
    await store.create_run(*run("a1", tenant="acme", user="ana", at=1000.0, order="1234"))
    await store.create_run(*run("b1", tenant="beta", user="ana", at=2000.0, order="1234"))
    await store.create_run(*run("a2", tenant="acme", user="bo", at=3000.0, ticket="9"))
    await store.create_run(*run("a3", tenant="acme", user="ana", at=4000.0, order="77"))

    async def ids(**filters) -> list[str]:
        return [r.id for r in await store.list_runs(**filters)]

    assert await ids(tenant="acme") == ["a3", "a2", "a1"]
    assert await ids(tenant="beta") == ["b1"]
    assert await ids(tenant="acme", user="ana") == ["a3", "a1"]
    assert await ids(tag=("order", "1234")) == ["b1", "a1"]
    assert await ids(tenant="acme", tag=("order", "1234")) == ["a1"]
    assert await ids(tag=("order", "nope")) == []
    assert await ids(since=2000.0, until=4000.0) == ["a2", "b1"]
    assert await ids(tenant="acme", limit=2) == ["a3", "a2"]
    assert await ids(tenant="acme", limit=2, offset=2) == ["a1"]


async def test_runs_are_counted_by_tenant_for_the_platform(store):
    assert await store.runs_by_tenant() == {}
    for run_id, tenant in (("a1", "acme"), ("b1", "beta"), ("a2", "acme")):
        await store.create_run(*run(run_id, tenant=tenant, at=1000.0))
    assert await store.runs_by_tenant() == {"acme": 2, "beta": 1}
