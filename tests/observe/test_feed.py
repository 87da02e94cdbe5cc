"""The Observer: what sinks receive, in which order, and that a failing sink harms no other."""

from __future__ import annotations

import time
from collections.abc import Sequence

from bosun.journal.events import ModelRequested, RunFinished, RunStarted
from bosun.observe.feed import Commit, Observer
from bosun.store import RUNNING, RunRecord
from bosun.store.sqlite import SqliteStore


class Recorder:
    def __init__(self) -> None:
        self.received: list[tuple[str, int, list[str]]] = []

    async def handle(self, commits: Sequence[Commit]) -> None:
        for c in commits:
            self.received.append((c.info.run_id, c.first_seq, [e.kind for e in c.events]))

    async def close(self) -> None:
        return None


class Broken:
    async def handle(self, commits: Sequence[Commit]) -> None:
        raise RuntimeError("sink bug")

    async def close(self) -> None:
        return None


def asked(step: int) -> ModelRequested:
    return ModelRequested(ts=2.0, step=step, provider="p", model="m", messages=1)


async def test_back_to_back_commits_of_a_run_reach_sinks_as_one_in_commit_order(tmp_path):
    store = SqliteStore(str(tmp_path / "feed.db"))
    await store.open()
    for run_id in ("a", "b"):
        run = RunRecord(
            id=run_id, agent="support", agent_version="v1", input="hi", spec={"name": "support"},
            status=RUNNING, lease_owner="w1", lease_expires_at=time.time() + 60,
        )  # fmt: skip
        await store.create_run(
            run, [RunStarted(ts=1.0, agent="support", agent_version="v1", input="hi")]
        )
    recorder = Recorder()
    observer = Observer(store, [Broken(), recorder])
    observer("a", 2, [asked(0), asked(1)])
    observer("a", 4, [asked(2)])  # contiguous with the one before: merged
    observer("b", 2, [asked(0)])
    observer("a", 5, [asked(3)])  # another run came in between: not merged
    observer("a", 7, [RunFinished(ts=3.0, status="succeeded", reason="done")])  # a gap (6)
    await observer.flush()
    await observer.close()
    await store.close()

    requested = "model_requested"
    assert recorder.received == [
        ("a", 2, [requested] * 3),
        ("b", 2, [requested]),
        ("a", 5, [requested]),
        ("a", 7, ["run_finished"]),
    ]
    assert observer.dropped == 0


async def test_merging_leaves_the_committers_lists_alone_and_max_queue_counts_commits(tmp_path):
    store = SqliteStore(str(tmp_path / "feed.db"))
    await store.open()
    run = RunRecord(
        id="a", agent="support", agent_version="v1", input="hi", spec={"name": "support"},
        status=RUNNING, lease_owner="w1", lease_expires_at=time.time() + 60,
    )  # fmt: skip
    await store.create_run(
        run, [RunStarted(ts=1.0, agent="support", agent_version="v1", input="hi")]
    )
    recorder = Recorder()
    observer = Observer(store, [recorder], max_queue=3)
    first, second = [asked(0)], [asked(1), asked(2)]
    observer("a", 2, first)
    observer("a", 3, second)  # merged into the entry of the first
    observer("a", 5, [asked(3)])
    observer("a", 6, [asked(4)])  # a fourth commit while three are queued: dropped
    assert first == [asked(0)] and second == [asked(1), asked(2)]  # other listeners get these
    await observer.flush()
    observer("a", 7, [asked(5)])  # the queue was emptied: accepted again (not contiguous)
    await observer.close()
    await store.close()

    assert recorder.received == [("a", 2, ["model_requested"] * 4), ("a", 7, ["model_requested"])]
    assert observer.dropped == 1
