"""SQLite group commit: runs created and appended in the same loop tick share a transaction,
and one bad item or one cancelled caller never costs the others their writes."""

from __future__ import annotations

import asyncio
import time

import pytest

from bosun.errors import StoreError
from bosun.journal.events import ModelRequested, RunStarted
from bosun.store import RUNNING, RunRecord, RunSummary
from bosun.store.sqlite import SqliteStore


def record(run_id: str) -> RunRecord:
    return RunRecord(
        id=run_id, agent="support", agent_version="support-v1", input="hi",
        spec={"name": "support"}, status=RUNNING, lease_owner="w1",
        lease_expires_at=time.time() + 60,
    )  # fmt: skip


def started() -> RunStarted:
    return RunStarted(ts=1.0, agent="support", agent_version="support-v1", input="hi")


def asked(n: int) -> ModelRequested:
    return ModelRequested(ts=2.0, step=0, provider="p", model="m", messages=n)


SUMMARY = RunSummary(status=RUNNING, steps=0, tool_calls=0, input_tokens=0, output_tokens=0, cost=0)


@pytest.fixture
async def store(tmp_path):
    store = SqliteStore(str(tmp_path / "gc.db"))
    await store.open()
    yield store
    await store.close()


async def test_runs_created_together_share_one_transaction(store):
    before = store.commits
    await asyncio.gather(*(store.create_run(record(f"r{i}"), [started()]) for i in range(100)))
    assert store.commits - before == 1
    runs = await store.list_runs(limit=200)
    assert len(runs) == 100
    assert [len(await store.events(r.id)) for r in runs] == [1] * 100


async def test_a_bad_item_fails_alone_and_the_rest_of_its_batch_lands(store):
    await store.create_run(record("taken"), [started()])
    outcomes = await asyncio.gather(
        store.create_run(record("a"), [started()]),
        store.create_run(record("taken"), [started()]),  # duplicate id
        store.create_run(record("b"), [started()]),
        return_exceptions=True,
    )
    assert outcomes[0].id == "a" and outcomes[2].id == "b"
    assert isinstance(outcomes[1], StoreError) and "taken" in str(outcomes[1])
    assert {r.id for r in await store.list_runs()} == {"taken", "a", "b"}


async def test_a_cancelled_writer_still_writes_what_others_queued_behind_it(store):
    for run_id in ("a", "b"):
        await store.create_run(record(run_id), [started()])

    first = asyncio.create_task(
        store.append("a", [asked(1)], first_seq=2, owner="w1", summary=SUMMARY)
    )
    second = asyncio.create_task(
        store.append("b", [asked(2)], first_seq=2, owner="w1", summary=SUMMARY)
    )
    await asyncio.sleep(0)  # both are queued; `first` is the one that will write the batch
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert (await asyncio.wait_for(second, 10)).cancel_requested is False
    assert [e for _, e in await store.events("b")] == [started(), asked(2)]
    assert [e for _, e in await store.events("a")] == [started(), asked(1)]
