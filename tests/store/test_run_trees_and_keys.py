"""Run trees (parent, root, cascades) and idempotent run creation, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bosun.journal.events import RunStarted
from bosun.store import RunRecord, Store, open_store


@pytest.fixture
async def store(db_url) -> AsyncIterator[Store]:
    store = open_store(db_url)
    await store.open()
    yield store
    await store.close()


def record(run_id: str, *, key: str | None = None, tenant: str = "default") -> RunRecord:
    return RunRecord(
        id=run_id,
        agent="support",
        agent_version="support@v1",
        input="hello",
        spec={"name": "support"},
        tenant=tenant,
        idempotency_key=key,
    )


def started() -> RunStarted:
    return RunStarted(ts=0.0, agent="support", agent_version="support@v1", input="hello")


async def test_a_top_level_run_is_its_own_root_and_has_no_parent(store):
    created = await store.create_run(record("r1"), [started()])
    assert created.id == "r1"
    run = await store.get_run("r1")
    assert run is not None and run.parent_id is None and run.root_id == "r1"


async def test_a_child_keeps_its_parent_and_root(store):
    await store.create_run(record("root"), [started()])
    child = record("child")
    child.parent_id, child.root_id = "root", "root"
    await store.create_run(child, [started()])
    run = await store.get_run("child")
    assert run is not None and (run.parent_id, run.root_id) == ("root", "root")


async def test_the_same_key_returns_the_first_run_and_writes_nothing(store):
    first = await store.create_run(record("r1", key="order-1234"), [started()])
    again = await store.create_run(record("r2", key="order-1234"), [started(), started()])
    assert first.id == again.id == "r1"
    assert await store.get_run("r2") is None
    assert len(await store.events("r1")) == 1  # the second create's events went nowhere
    assert len(await store.list_runs()) == 1


async def test_keys_are_per_tenant(store):
    a = await store.create_run(record("a", key="k", tenant="acme"), [started()])
    b = await store.create_run(record("b", key="k", tenant="globex"), [started()])
    assert (a.id, b.id) == ("a", "b")


async def test_concurrent_creates_with_one_key_make_one_run(store):
    results = await asyncio.gather(
        *(store.create_run(record(f"r{i}", key="webhook-77"), [started()]) for i in range(8))
    )
    assert len({r.id for r in results}) == 1
    runs = await store.list_runs()
    assert [r.id for r in runs] == [results[0].id]


async def test_concurrent_creates_from_two_connections_make_one_run(db_url):
    """Two stores (two pools / processes' worth of connections) racing on one key."""
    one, two = open_store(db_url), open_store(db_url)
    await one.open()
    await two.open()
    try:
        results = await asyncio.gather(
            *(
                s.create_run(record(f"r{i}", key="retry"), [started()])
                for i, s in enumerate([one, two] * 4)
            )
        )
        assert len({r.id for r in results}) == 1
        assert len(await one.list_runs()) == 1
    finally:
        await one.close()
        await two.close()


async def _tree(store: Store) -> None:
    """root -> child -> grandchild, plus an unrelated run, all queued."""
    for run_id, parent in (("root", None), ("child", "root"), ("grand", "child"), ("other", None)):
        run = record(run_id)
        run.parent_id, run.root_id = parent, ("root" if parent else None)
        await store.create_run(run, [started()])


async def test_a_cancel_cascades_down_the_tree_and_nowhere_else(store):
    await _tree(store)
    assert await store.request_cancel("child") is True
    flags = {r.id: r.cancel_requested for r in await store.list_runs()}
    assert flags == {"root": False, "child": True, "grand": True, "other": False}
    assert await store.request_cancel("root") is True
    flags = {r.id: r.cancel_requested for r in await store.list_runs()}
    assert flags == {"root": True, "child": True, "grand": True, "other": False}


async def test_a_pause_cascades_down_the_tree(store):
    await _tree(store)
    assert await store.request_pause("root") is True
    flags = {r.id: r.pause_requested for r in await store.list_runs()}
    assert flags == {"root": True, "child": True, "grand": True, "other": False}


async def test_runs_are_listed_by_parent_and_by_root(store):
    await _tree(store)
    assert [r.id for r in await store.list_runs(parent_id="root")] == ["child"]
    assert {r.id for r in await store.list_runs(root_id="root")} == {"root", "child", "grand"}
    assert [r.id for r in await store.list_runs(root_id="other")] == ["other"]
