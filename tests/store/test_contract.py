"""The Store contract: every test runs on SQLite and on PostgreSQL, and both must agree."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import time
from collections.abc import AsyncIterator

import psycopg
import pytest

from bosun.errors import LeaseLost, StoreError
from bosun.journal.audit import GENESIS, AuditEntry, chain_hash
from bosun.journal.events import (
    ApprovalRequested,
    ModelRequested,
    ModelResponded,
    RunFinished,
    RunPaused,
    RunStarted,
    ToolFinished,
)
from bosun.store import (
    FAILED,
    NEEDS_ATTENTION,
    PAUSED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    RunRecord,
    RunSummary,
    Store,
    open_store,
)
from bosun.store.base import (
    APPROVED,
    BLOB_THRESHOLD,
    DENIED,
    ESCALATED,
    EXPIRED,
    PENDING,
    WAITING_APPROVAL,
    ApprovalConflict,
)

BIG = "lorem ipsum " * 2_000  # ~24 KB, well over BLOB_THRESHOLD
assert len(BIG) > BLOB_THRESHOLD


@pytest.fixture
async def store(db_url) -> AsyncIterator[Store]:
    store = open_store(db_url)
    await store.open()
    yield store
    await store.close()


def query(db_url: str, sql: str) -> list[tuple]:
    """Raw SQL against the store's database (same text on both: no parameters)."""
    if db_url.startswith("postgresql://"):
        with psycopg.connect(db_url) as conn:
            return conn.execute(sql).fetchall()
    with sqlite3.connect(db_url) as conn:
        return conn.execute(sql).fetchall()


def record(run_id: str, *, status: str = QUEUED, agent: str = "support", **kw) -> RunRecord:
    return RunRecord(
        id=run_id,
        agent=agent,
        agent_version=f"{agent}-v1",
        input=f"input of {run_id}",
        spec={"name": agent, "model": {"provider": "scripted"}, "limits": {"max_steps": 10}},
        status=status,
        **kw,
    )


def started(run_id: str, agent: str = "support") -> RunStarted:
    return RunStarted(ts=1.0, agent=agent, agent_version=f"{agent}-v1", input=f"input of {run_id}")


async def create_leased(store: Store, run_id: str, owner: str = "w1", **kw) -> None:
    run = record(run_id, status=RUNNING, lease_owner=owner, lease_expires_at=time.time() + 60, **kw)
    await store.create_run(run, [started(run_id, run.agent)])


def summary(status: str = RUNNING, steps: int = 1, **kw) -> RunSummary:
    values = {"tool_calls": 0, "input_tokens": 0, "output_tokens": 0, "cost": 0.0}
    values.update(kw)
    return RunSummary(status=status, steps=steps, **values)


def finished_event(status: str = SUCCEEDED) -> RunFinished:
    return RunFinished(ts=3.0, status=status, reason="done", output="bye")


async def finish(store: Store, run_id: str, *, at: float, first_seq: int = 2) -> None:
    await store.append(
        run_id,
        [finished_event()],
        first_seq=first_seq,
        owner="w1",
        summary=summary(SUCCEEDED, reason="done", output="bye", finished_at=at),
    )


# -- round trip -------------------------------------------------------------


async def test_created_run_and_its_events_read_back_in_order_with_exact_values(store):
    run = record(
        "r1",
        status=RUNNING,
        tenant="acme",
        user="ana",
        session="s-9",
        tags={"ticket": "4821", "order": "1234"},
        created_at=1700000000.25,
        lease_owner="w1",
        lease_expires_at=time.time() + 60,
    )
    first = [
        RunStarted(ts=1.5, agent="support", agent_version="support-v1", input="hello ✓"),
        ModelRequested(ts=2.25, step=1, provider="scripted", model="m", messages=2),
    ]
    await store.create_run(run, first)
    responded = ModelResponded(
        ts=3.125,
        step=1,
        model="m",
        content="hi there",
        tool_calls=0,
        input_tokens=17,
        output_tokens=5,
        cost=0.000123,
        latency_ms=12.5,
    )
    await store.append(
        "r1",
        [responded],
        first_seq=3,
        owner="w1",
        summary=summary(steps=1, input_tokens=17, output_tokens=5, cost=0.000123),
    )

    assert await store.events("r1") == [(1, first[0]), (2, first[1]), (3, responded)]
    assert await store.events("r1", after_seq=2) == [(3, responded)]
    got = await store.get_run("r1")
    assert got is not None
    assert (got.id, got.agent, got.agent_version, got.input) == (
        "r1",
        "support",
        "support-v1",
        "input of r1",
    )
    assert got.spec == run.spec
    assert (got.tenant, got.user, got.session) == ("acme", "ana", "s-9")
    assert got.tags == {"ticket": "4821", "order": "1234"}
    assert got.created_at == 1700000000.25
    assert (got.steps, got.input_tokens, got.output_tokens, got.cost) == (1, 17, 5, 0.000123)
    assert got.last_seq == 3
    assert got.lease_owner == "w1"
    assert got.cancel_requested is False
    assert await store.get_run("missing") is None
    assert await store.events("missing") == []


async def test_summary_columns_change_together_with_the_events_they_summarise(store):
    await create_leased(store, "r1")
    await store.append(
        "r1",
        [finished_event(FAILED)],
        first_seq=2,
        owner="w1",
        summary=summary(
            FAILED,
            steps=4,
            tool_calls=2,
            input_tokens=100,
            output_tokens=20,
            cost=0.5,
            reason="tool broke",
            output=None,
            finished_at=1234.5,
        ),
    )
    got = await store.get_run("r1")
    assert (got.status, got.steps, got.tool_calls, got.input_tokens, got.output_tokens) == (
        FAILED,
        4,
        2,
        100,
        20,
    )
    assert (got.cost, got.reason, got.output, got.finished_at, got.last_seq) == (
        0.5,
        "tool broke",
        None,
        1234.5,
        2,
    )
    assert [seq for seq, _ in await store.events("r1")] == [1, 2]


async def test_append_without_events_updates_the_summary_and_keeps_last_seq(store):
    await create_leased(store, "r1")
    await store.append("r1", [], first_seq=2, owner="w1", summary=summary(steps=7))
    got = await store.get_run("r1")
    assert (got.steps, got.last_seq) == (7, 1)


# -- fencing ----------------------------------------------------------------


async def test_append_by_a_worker_without_the_lease_raises_lease_lost_and_writes_nothing(store):
    await create_leased(store, "r1", owner="w1")
    with pytest.raises(LeaseLost, match="r1"):
        await store.append(
            "r1", [finished_event()], first_seq=2, owner="w2", summary=summary(SUCCEEDED, 9)
        )
    got = await store.get_run("r1")
    assert (got.status, got.steps, got.last_seq) == (RUNNING, 0, 1)
    assert len(await store.events("r1")) == 1


async def test_a_fenced_append_does_not_fail_the_others_committed_with_it(store):
    for run_id in ("a", "b", "c"):
        await create_leased(store, run_id, owner="w1")
    results = await asyncio.gather(
        store.append("a", [finished_event()], first_seq=2, owner="w1", summary=summary()),
        store.append("b", [finished_event()], first_seq=2, owner="thief", summary=summary()),
        store.append("c", [finished_event()], first_seq=2, owner="w1", summary=summary()),
        return_exceptions=True,
    )
    assert not isinstance(results[0], BaseException)
    assert isinstance(results[1], LeaseLost)
    assert not isinstance(results[2], BaseException)
    assert [len(await store.events(r)) for r in ("a", "b", "c")] == [2, 1, 2]


async def test_a_seq_written_twice_is_rejected_and_other_appends_in_the_batch_still_land(store):
    await create_leased(store, "a")
    await create_leased(store, "b")
    good, duplicate = await asyncio.gather(
        store.append("a", [finished_event()], first_seq=2, owner="w1", summary=summary(steps=5)),
        store.append("b", [finished_event()], first_seq=1, owner="w1", summary=summary(steps=5)),
        return_exceptions=True,
    )
    assert not isinstance(good, BaseException)
    assert isinstance(duplicate, StoreError) and not isinstance(duplicate, LeaseLost)
    assert "b" in str(duplicate)
    a, b = await store.get_run("a"), await store.get_run("b")
    assert (a.steps, a.last_seq) == (5, 2)
    assert (b.steps, b.last_seq) == (0, 1)  # the failed append changed nothing
    assert await store.events("b") == [(1, started("b"))]


# -- large payloads -----------------------------------------------------------


async def test_large_payloads_are_stored_once_by_hash_and_read_back_transparently(store, db_url):
    for run_id in ("a", "b"):
        await create_leased(store, run_id)
        result = ToolFinished(ts=2.0, call_id="c1", tool="fetch", result=BIG, duration_ms=3.0)
        await store.append(run_id, [result], first_seq=2, owner="w1", summary=summary())
    for run_id in ("a", "b"):
        events = await store.events(run_id)
        assert events[1] == (
            2,
            ToolFinished(ts=2.0, call_id="c1", tool="fetch", result=BIG, duration_ms=3.0),
        )
    [(count, size)] = query(db_url, "SELECT count(*), sum(length(data)) FROM blobs")
    assert count == 1 and size > len(BIG)
    [(journal,)] = query(db_url, "SELECT max(length(data)) FROM events")
    assert journal < BLOB_THRESHOLD


async def test_a_large_payload_in_the_first_events_is_stored_by_hash_too(store, db_url):
    run = record("a", status=RUNNING, lease_owner="w1")
    big_input = RunStarted(ts=1.0, agent="support", agent_version="support-v1", input=BIG)
    await store.create_run(run, [big_input])
    assert await store.events("a") == [(1, big_input)]
    assert query(db_url, "SELECT count(*) FROM blobs") == [(1,)]


# -- claims and leases ------------------------------------------------------------


async def test_concurrent_claims_from_many_workers_hand_each_run_out_exactly_once(db_url):
    stores = [open_store(db_url) for _ in range(3)]
    for s in stores:
        await s.open()
    try:
        for i in range(40):
            await stores[0].create_run(record(f"r{i:02}", created_at=1000.0 + i), [])
        claimed: list[tuple[str, str]] = []
        while True:
            batches = await asyncio.gather(
                *[stores[w % 3].claim(f"w{w}", limit=3, lease_seconds=60) for w in range(6)]
            )
            got = [(run.id, f"w{w}") for w, runs in enumerate(batches) for run in runs]
            if not got:
                break
            claimed.extend(got)
        ids = [run_id for run_id, _ in claimed]
        assert sorted(ids) == [f"r{i:02}" for i in range(40)]  # each exactly once
        for run_id, worker in claimed:
            run = await stores[0].get_run(run_id)
            assert (run.status, run.lease_owner) == (RUNNING, worker)
    finally:
        for s in stores:
            await s.close()


async def test_claim_returns_oldest_runs_first_with_the_lease_set(store):
    for i in (3, 1, 2):
        await store.create_run(record(f"r{i}", created_at=1000.0 + i), [])
    before = time.time()
    runs = await store.claim("w1", limit=2, lease_seconds=30)
    assert [r.id for r in runs] == ["r1", "r2"]
    for r in runs:
        assert (r.status, r.lease_owner) == (RUNNING, "w1")
        assert before + 25 < r.lease_expires_at < time.time() + 35
    assert [r.id for r in await store.claim("w2", limit=5, lease_seconds=30)] == ["r3"]
    assert await store.claim("w3", limit=5, lease_seconds=30) == []


async def test_an_expired_lease_is_reclaimable_and_a_live_one_is_not(store):
    await store.create_run(record("r1"), [])
    [run] = await store.claim("w1", limit=1, lease_seconds=0.05)
    assert run.lease_owner == "w1"
    assert await store.claim("w2", limit=1, lease_seconds=30) == []
    assert await store.claim_one("w2", "r1", lease_seconds=30) is None
    await asyncio.sleep(0.2)
    [taken] = await store.claim("w2", limit=1, lease_seconds=30)
    assert (taken.id, taken.lease_owner) == ("r1", "w2")
    with pytest.raises(LeaseLost):  # the old owner is fenced off
        await store.append("r1", [started("r1")], first_seq=1, owner="w1", summary=summary())


async def test_claim_one_takes_an_expired_lease(store):
    await store.create_run(record("r1"), [])
    assert (await store.claim_one("w1", "r1", lease_seconds=0.05)).lease_owner == "w1"
    await asyncio.sleep(0.2)
    assert (await store.claim_one("w2", "r1", lease_seconds=30)).lease_owner == "w2"


async def test_heartbeat_extends_only_the_leases_the_worker_still_holds(store):
    for run_id in ("a", "b", "c"):
        await store.create_run(record(run_id, created_at=time.time()), [])
    await store.claim_one("w1", "a", lease_seconds=0.05)
    await store.claim_one("w1", "b", lease_seconds=0.05)
    await store.claim_one("w2", "c", lease_seconds=30)
    c_before = (await store.get_run("c")).lease_expires_at

    assert await store.heartbeat("w1", ["a", "b", "c", "missing"], 30) == {"a", "b"}
    assert await store.heartbeat("w1", [], 30) == set()
    assert (await store.get_run("c")).lease_expires_at == c_before
    await asyncio.sleep(0.2)  # past the first 0.05 s leases
    assert await store.claim("w3", limit=5, lease_seconds=30) == []
    assert await store.heartbeat("w3", ["a"], 30) == set()
    assert (await store.get_run("a")).lease_owner == "w1"


async def test_release_makes_a_run_claimable_at_once_but_only_by_its_owner(store):
    await store.create_run(record("r1"), [])
    await store.claim_one("w1", "r1", lease_seconds=60)
    await store.release("r1", "w2")  # not the owner: nothing happens
    assert await store.claim("w2", limit=1, lease_seconds=60) == []
    await store.release("r1", "w1")
    got = await store.get_run("r1")
    assert (got.status, got.lease_owner, got.lease_expires_at) == (RUNNING, None, None)
    [taken] = await store.claim("w2", limit=1, lease_seconds=60)
    assert taken.lease_owner == "w2"


async def test_claim_one_leases_only_a_claimable_run(store):
    await store.create_run(record("queued"), [])
    await create_leased(store, "parked")
    await store.set_status("parked", NEEDS_ATTENTION, reason="irreversible tool interrupted")
    await store.release("parked", "w1")
    await create_leased(store, "done")
    await finish(store, "done", at=time.time())
    await store.release("done", "w1")

    got = await store.claim_one("w1", "queued", lease_seconds=60)
    assert (got.id, got.status, got.lease_owner) == ("queued", RUNNING, "w1")
    assert got.input == "input of queued" and got.spec["name"] == "support"
    assert await store.claim_one("w2", "queued", lease_seconds=60) is None  # live lease
    assert await store.claim_one("w1", "parked", lease_seconds=60) is None
    assert await store.claim_one("w1", "done", lease_seconds=60) is None
    assert await store.claim_one("w1", "missing", lease_seconds=60) is None
    assert await store.claim("w3", limit=10, lease_seconds=60) == []


# -- status and cancel ----------------------------------------------------------


async def test_request_cancel_reaches_the_worker_through_its_next_append(store):
    await create_leased(store, "r1")
    first = await store.append("r1", [], first_seq=2, owner="w1", summary=summary())
    assert first.cancel_requested is False
    assert await store.request_cancel("r1") is True
    assert (await store.get_run("r1")).cancel_requested is True
    result = await store.append(
        "r1", [finished_event()], first_seq=2, owner="w1", summary=summary()
    )
    assert result.cancel_requested is True


async def test_request_cancel_of_a_finished_or_missing_run_returns_false(store):
    await create_leased(store, "r1")
    await finish(store, "r1", at=time.time())
    assert await store.request_cancel("r1") is False
    assert (await store.get_run("r1")).cancel_requested is False
    assert await store.request_cancel("missing") is False


async def test_a_pause_reaches_the_worker_through_its_next_append_and_unpause_requeues(store):
    await create_leased(store, "r1")
    assert (
        await store.append("r1", [], first_seq=2, owner="w1", summary=summary())
    ).pause_requested is False
    assert await store.request_pause("r1") is True
    assert (await store.get_run("r1")).pause_requested is True
    paused = RunPaused(ts=2.0, reason="paused by request")
    result = await store.append(
        "r1", [paused], first_seq=2, owner="w1", summary=summary(status=PAUSED)
    )
    assert result.pause_requested is True
    await store.release("r1", "w1")
    assert (await store.get_run("r1")).status == PAUSED
    assert await store.request_pause("r1") is False  # paused already
    assert await store.claim("w2", limit=10, lease_seconds=60) == []  # no worker takes it
    assert await store.unpause("r1") is True
    run = await store.get_run("r1")
    assert (run.status, run.pause_requested) == (QUEUED, False)
    assert await store.unpause("r1") is False  # not paused any more
    assert [r.id for r in await store.claim("w2", limit=10, lease_seconds=60)] == ["r1"]


async def test_cancelling_a_paused_run_queues_it_so_a_worker_ends_it(store):
    await create_leased(store, "r1")
    await store.request_pause("r1")
    await store.append(
        "r1",
        [RunPaused(ts=2.0, reason="x")],
        first_seq=2,
        owner="w1",
        summary=summary(status=PAUSED),
    )
    await store.release("r1", "w1")
    assert await store.request_cancel("r1") is True
    run = await store.get_run("r1")
    assert (run.status, run.cancel_requested) == (QUEUED, True)
    [claimed] = await store.claim("w1", limit=10, lease_seconds=60)  # a worker ends it
    assert claimed.cancel_requested is True
    await finish(store, "r1", at=time.time(), first_seq=3)
    assert await store.request_pause("r1") is False  # finished: nothing to pause
    assert await store.unpause("missing") is False


async def test_set_status_requeues_a_parked_run_but_never_changes_a_finished_one(store):
    await create_leased(store, "parked")
    await store.append(
        "parked", [], first_seq=2, owner="w1", summary=summary(NEEDS_ATTENTION, reason="why")
    )
    await store.release("parked", "w1")
    assert await store.claim("w2", limit=5, lease_seconds=60) == []

    await store.set_status("parked", QUEUED, reason="approved by ana")
    got = await store.get_run("parked")
    assert (got.status, got.reason) == (QUEUED, "approved by ana")
    assert [r.id for r in await store.claim("w2", limit=5, lease_seconds=60)] == ["parked"]

    await create_leased(store, "done")
    await finish(store, "done", at=time.time())
    await store.set_status("done", QUEUED)
    assert (await store.get_run("done")).status == SUCCEEDED


# -- listing --------------------------------------------------------------------


async def test_list_runs_is_newest_first_and_filters_by_status_and_agent(store):
    await store.create_run(record("old", agent="support", created_at=1000.0), [])
    await store.create_run(record("mid", agent="billing", created_at=2000.0), [])
    await create_leased(store, "new", agent="support", created_at=3000.0)

    assert [r.id for r in await store.list_runs()] == ["new", "mid", "old"]
    assert [r.id for r in await store.list_runs(limit=2)] == ["new", "mid"]
    assert [r.id for r in await store.list_runs(status=QUEUED)] == ["mid", "old"]
    assert [r.id for r in await store.list_runs(agent="support")] == ["new", "old"]
    assert [r.id for r in await store.list_runs(status=RUNNING, agent="support")] == ["new"]
    assert await store.list_runs(agent="nobody") == []
    [mid] = await store.list_runs(agent="billing")
    assert (mid.agent_version, mid.spec["name"], mid.tags) == ("billing-v1", "billing", {})


# -- retention ------------------------------------------------------------------


async def test_gc_deletes_old_journals_and_unshared_blobs_and_keeps_the_rest(store, db_url):
    now = time.time()
    shared = ToolFinished(ts=2.0, call_id="c", tool="fetch", result=BIG, duration_ms=1.0)
    own = ToolFinished(ts=2.0, call_id="c", tool="fetch", result=BIG + "only old", duration_ms=1.0)
    # "old" finished a day ago and holds the shared and its own large payload.
    await create_leased(store, "old")
    await store.append("old", [shared, own], first_seq=2, owner="w1", summary=summary())
    await finish(store, "old", at=now - 86_400, first_seq=4)
    # "plain" finished a day ago, no large payloads.
    await create_leased(store, "plain")
    await finish(store, "plain", at=now - 86_400)
    # "recent" finished a minute ago and "live" is still running; both use the shared payload.
    await create_leased(store, "recent")
    await store.append("recent", [shared], first_seq=2, owner="w1", summary=summary())
    await finish(store, "recent", at=now - 60, first_seq=3)
    await create_leased(store, "live")
    await store.append("live", [shared], first_seq=2, owner="w1", summary=summary())

    [(event_bytes,)] = query(
        db_url,
        "SELECT sum(length(data)) FROM events WHERE run_id IN ('old', 'plain')"
        if db_url.startswith("postgresql://")
        else "SELECT sum(length(e.data)) FROM events e JOIN runs r ON r.no = e.run"
        " WHERE r.id IN ('old', 'plain')",
    )
    [(blob_bytes_before,)] = query(db_url, "SELECT sum(length(data)) FROM blobs")

    report = await store.gc(older_than=now - 3_600)

    [(blob_bytes_after,)] = query(db_url, "SELECT sum(length(data)) FROM blobs")
    assert (report.runs, report.events, report.blobs) == (2, 4 + 2, 1)
    assert report.bytes_freed == event_bytes + (blob_bytes_before - blob_bytes_after)
    assert await store.events("old") == [] and await store.events("plain") == []
    old = await store.get_run("old")
    assert (old.status, old.output, old.last_seq) == (SUCCEEDED, "bye", 4)  # the summary stays
    assert (await store.events("recent"))[1] == (2, shared)
    assert (await store.events("live"))[1] == (2, shared)
    assert query(db_url, "SELECT count(*) FROM blobs") == [(1,)]

    again = await store.gc(older_than=now - 3_600)
    assert (again.runs, again.events, again.blobs, again.bytes_freed) == (0, 0, 0, 0)


async def test_gc_deletes_a_blob_once_no_journal_references_it(store, db_url):
    now = time.time()
    big = ToolFinished(ts=2.0, call_id="c", tool="fetch", result=BIG, duration_ms=1.0)
    for run_id in ("a", "b"):
        await create_leased(store, run_id)
        await store.append(run_id, [big], first_seq=2, owner="w1", summary=summary())
        await finish(store, run_id, at=now - 86_400, first_seq=3)
    report = await store.gc(older_than=now)
    assert (report.runs, report.events, report.blobs) == (2, 6, 1)
    assert query(db_url, "SELECT count(*) FROM blobs") == [(0,)]


# -- group commit and durability --------------------------------------------------


async def test_concurrent_appends_all_land_and_share_commits(store):
    n = 200
    for i in range(n):
        await create_leased(store, f"r{i:03}")
    commits_before = store.commits
    results = await asyncio.gather(
        *[
            store.append(
                f"r{i:03}",
                [ModelRequested(ts=2.0, step=1, provider="p", model="m", messages=i)],
                first_seq=2,
                owner="w1",
                summary=summary(steps=i),
            )
            for i in range(n)
        ]
    )
    assert all(r.cancel_requested is False for r in results)
    assert store.commits - commits_before < n  # batched, not one transaction per append
    for i in (0, 57, n - 1):
        events = await store.events(f"r{i:03}")
        assert events[1] == (2, ModelRequested(ts=2.0, step=1, provider="p", model="m", messages=i))
        assert (await store.get_run(f"r{i:03}")).steps == i


async def test_runs_and_journals_survive_closing_and_reopening_the_store(db_url):
    store = open_store(db_url)
    await store.open()
    await create_leased(store, "r1")
    big = ToolFinished(ts=2.0, call_id="c", tool="fetch", result=BIG, duration_ms=1.0)
    await store.append("r1", [big], first_seq=2, owner="w1", summary=summary(steps=3))
    await store.close()

    reopened = open_store(db_url)
    await reopened.open()  # schema creation is idempotent
    try:
        assert await reopened.events("r1") == [(1, started("r1")), (2, big)]
        got = await reopened.get_run("r1")
        assert (got.steps, got.last_seq, got.lease_owner) == (3, 2, "w1")
        await reopened.append("r1", [finished_event()], first_seq=3, owner="w1", summary=summary())
        assert len(await reopened.events("r1")) == 3
    finally:
        await reopened.close()


async def test_using_a_store_that_is_not_open_raises_store_error(db_url):
    store = open_store(db_url)
    with pytest.raises(StoreError, match="not open"):
        await store.get_run("r1")


# -- governance: approvals, kill switches, rate limits, audit ----------------------


def approval_requested(approval_id: str, **kw) -> ApprovalRequested:
    values = {
        "call_id": "call-1",
        "tool": "refund",
        "arguments": '{"amount": 50}',
        "role": "support-lead",
        "rule": "refunds need a lead",
        "reason": "refund over 20",
    }
    values.update(kw)
    return ApprovalRequested(ts=2.0, approval_id=approval_id, **values)


async def park_for_approval(store: Store, run_id: str, *requests: ApprovalRequested) -> None:
    await create_leased(store, run_id, tenant="acme")
    await store.append(
        run_id, list(requests), first_seq=2, owner="w1", summary=summary(WAITING_APPROVAL)
    )
    await store.release(run_id, "w1")


def assert_chain_is_intact(records) -> None:
    prev = GENESIS
    for rec in records:
        assert rec.prev_hash == prev
        assert rec.hash == chain_hash(prev, rec.entry)
        prev = rec.hash


async def test_an_approval_is_resolved_once_and_requeues_its_run_when_it_was_the_last(store):
    await park_for_approval(store, "r1", approval_requested("a1"), approval_requested("a2"))
    pending = await store.list_approvals(tenant="acme")
    assert [(a.id, a.run_id, a.status, a.agent, a.role) for a in pending] == [
        ("a1", "r1", PENDING, "support", "support-lead"),
        ("a2", "r1", PENDING, "support", "support-lead"),
    ]
    assert (await store.get_run("r1")).status == WAITING_APPROVAL

    first = await store.resolve_approval("a1", decision=APPROVED, by="ana", comment="ok")
    assert (first.status, first.decided_by, first.comment) == (APPROVED, "ana", "ok")
    assert (await store.get_run("r1")).status == WAITING_APPROVAL  # a2 still pending
    with pytest.raises(ApprovalConflict, match="already approved by ana"):
        await store.resolve_approval("a1", decision=DENIED, by="bob")
    with pytest.raises(ApprovalConflict, match="no approval"):
        await store.resolve_approval("nope", decision=DENIED, by="bob")

    await store.resolve_approval("a2", decision=DENIED, by="bob")
    assert (await store.get_run("r1")).status == QUEUED
    assert await store.list_approvals() == []
    assert (await store.get_approval("a2")).status == DENIED
    assert [a.id for a in await store.list_approvals(status=None, run_id="r1")] == ["a1", "a2"]

    records = await store.audit_records()
    assert [r.entry.action for r in records] == [
        "agent_version_registered",  # the first run of a version records its definition
        "approval_requested",
        "approval_requested",
        "approval_decided",
        "approval_decided",
    ]
    assert_chain_is_intact(records)


async def test_a_run_whose_approvals_were_all_resolved_before_it_parked_is_requeued(store):
    await create_leased(store, "r1")
    await store.append("r1", [approval_requested("a1")], first_seq=2, owner="w1", summary=summary())
    await store.resolve_approval("a1", decision=APPROVED, by="ana")
    await store.append("r1", [], first_seq=3, owner="w1", summary=summary(WAITING_APPROVAL))
    assert (await store.get_run("r1")).status == QUEUED


async def test_expired_approvals_are_denied_or_escalated(store):
    await park_for_approval(
        store,
        "r1",
        approval_requested("deny-me", expires_at=100.0),
        approval_requested(
            "escalate-me",
            call_id="call-2",
            expires_at=100.0,
            on_expiry="escalate",
            escalate_to="manager",
        ),
        approval_requested("later", call_id="call-3", expires_at=time.time() + 3600),
    )
    changed = await store.expire_approvals(now=200.0)
    assert sorted((a.id, a.status, a.role) for a in changed) == [
        ("deny-me", EXPIRED, "support-lead"),
        ("escalate-me.esc", PENDING, "manager"),
    ]
    assert (await store.get_approval("escalate-me")).status == ESCALATED
    assert (await store.get_approval("escalate-me.esc")).replaces == "escalate-me"
    assert sorted(a.id for a in await store.list_approvals()) == ["escalate-me.esc", "later"]
    assert await store.expire_approvals(now=200.0) == []
    assert_chain_is_intact(await store.audit_records())


async def test_kill_switches_are_set_found_cleared_and_audited(store):
    assert await store.active_kill_switch(["global", "agent:support"]) is None
    await store.set_kill_switch("agent:support", reason="bad answers", by="ops")
    await store.set_kill_switch("tenant:acme", reason="unpaid", by="ops")
    found = await store.active_kill_switch(["global", "tenant:acme", "agent:support"])
    assert (found.scope, found.reason, found.set_by) == ("agent:support", "bad answers", "ops")
    await store.set_kill_switch("agent:support", reason="still bad", by="ana")
    assert {(k.scope, k.reason) for k in await store.kill_switches()} == {
        ("agent:support", "still bad"),
        ("tenant:acme", "unpaid"),
    }
    assert await store.clear_kill_switch("agent:support", by="ops") is True
    assert await store.clear_kill_switch("agent:support", by="ops") is False
    assert await store.active_kill_switch(["agent:support"]) is None

    records = await store.audit_records()
    assert [(r.entry.action, r.entry.subject) for r in records] == [
        ("kill_switch_set", "agent:support"),
        ("kill_switch_set", "tenant:acme"),
        ("kill_switch_set", "agent:support"),
        ("kill_switch_cleared", "agent:support"),
    ]
    assert records[1].entry.tenant == "acme"
    assert_chain_is_intact(records)
    assert [r.seq for r in await store.audit_records(after_seq=records[1].seq, limit=1)] == [
        records[2].seq
    ]


async def test_audit_records_appended_concurrently_form_one_unbroken_chain(db_url):
    stores = [open_store(db_url) for _ in range(2)]
    for s in stores:
        await s.open()
    try:
        await asyncio.gather(
            *[
                stores[i % 2].append_audit(
                    [AuditEntry(float(i), "ops", "policy_version", f"p{i}", {"n": i})]
                )
                for i in range(20)
            ]
        )
        records = await stores[0].audit_records()
        assert len(records) == 20
        assert_chain_is_intact(records)
    finally:
        for s in stores:
            await s.close()


async def test_take_rate_allows_up_to_the_limit_per_window(store):
    allowed = [await store.take_rate("tool:refund", limit=3, window_seconds=3600) for _ in range(5)]
    assert allowed == [True, True, True, False, False]
    assert await store.take_rate("tool:other", limit=3, window_seconds=3600) is True


async def test_a_rate_window_opens_at_its_first_take_and_closes_after_its_length(store):
    """No clock-aligned boundary splits a burst (the burst is counted in one window, however
    close to a minute's end it starts), and once the window has passed the count starts
    again."""
    window = 3.0
    takes = [
        await store.take_rate("auth:1.2.3.4", limit=2, window_seconds=window) for _ in range(3)
    ]
    assert takes == [True, True, False]
    await asyncio.sleep(window + 0.2)
    assert await store.take_rate("auth:1.2.3.4", limit=2, window_seconds=window) is True


async def test_spend_since_sums_run_costs_by_agent_and_tenant(store):
    await create_leased(store, "a", agent="support", tenant="acme", created_at=1000.0)
    await create_leased(store, "b", agent="billing", tenant="acme", created_at=2000.0)
    await create_leased(store, "c", agent="support", tenant="other", created_at=3000.0)
    for run_id, cost in (("a", 1.5), ("b", 2.0), ("c", 4.0)):
        await store.append(run_id, [], first_seq=2, owner="w1", summary=summary(cost=cost))
    assert await store.spend_since(0.0) == 7.5
    assert await store.spend_since(1500.0) == 6.0
    assert await store.spend_since(0.0, agent="support") == 5.5
    assert await store.spend_since(0.0, agent="support", tenant="acme") == 1.5


async def test_acquire_leases_a_finished_run_unless_another_worker_holds_it(store):
    await create_leased(store, "r1")
    await finish(store, "r1", at=time.time())
    assert await store.acquire("r1", "w2", lease_seconds=60) is None  # w1 still holds it
    await store.release("r1", "w1")
    got = await store.acquire("r1", "w2", lease_seconds=60)
    assert (got.status, got.lease_owner) == (SUCCEEDED, "w2")
    assert (await store.acquire("r1", "w2", lease_seconds=60)).lease_owner == "w2"


async def test_the_first_run_of_each_agent_version_audits_its_definition_and_policy(store):
    policy = {"name": "p", "rules": [{"name": "r", "tools": ["pay"], "effect": "deny"}]}
    spec = {"name": "support", "policy": policy, "tools": [{"name": "pay", "effect": "write"}]}
    await store.create_run(dataclasses.replace(record("r1"), spec=spec), [started("r1")])
    await store.create_run(dataclasses.replace(record("r2"), spec=spec), [started("r2")])
    other = dataclasses.replace(record("r3"), agent_version="support-v2", spec=spec)
    await store.create_run(other, [started("r3")])
    records = await store.audit_records()
    assert [(r.entry.action, r.entry.subject) for r in records] == [
        ("agent_version_registered", "support-v1"),
        ("agent_version_registered", "support-v2"),
    ]
    assert records[0].entry.data["policy"] == policy
    assert_chain_is_intact(records)


async def test_a_run_shows_its_last_position_and_time_after_a_commit_that_only_adds_events(store):
    await create_leased(store, "r1")
    answer = ModelResponded(
        ts=time.time(), step=0, model="m", content=None, tool_calls=1, input_tokens=5,
        output_tokens=1, cost=0.5, latency_ms=1.0,
    )  # fmt: skip
    await store.append("r1", [answer], first_seq=2, owner="w1", summary=summary(cost=0.5))
    before = await store.get_run("r1")
    # A tool result changes no summary column: only the journal grows.
    result = ToolFinished(ts=time.time(), call_id="c1", tool="t", result=1, duration_ms=1.0)
    await store.append("r1", [result], first_seq=3, owner="w1", summary=summary(cost=0.5))
    after = await store.get_run("r1")
    assert (before.last_seq, after.last_seq) == (2, 3)
    assert after.updated_at >= result.ts > before.updated_at
    assert [r.last_seq for r in await store.list_runs()] == [3]
    assert (after.steps, after.cost) == (1, 0.5)
