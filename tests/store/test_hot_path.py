"""The store written once is as fast as the two it replaced: a step's commit, a heartbeat and
a claim send SQLite the same statements as before (counted by SQLite's own trace hook)."""

from __future__ import annotations

import time

from bosun.journal.events import ModelResponded, RunStarted
from bosun.store import RunRecord, RunSummary
from bosun.store.sqlite import SqliteStore


async def test_a_step_a_heartbeat_and_a_claim_keep_their_statement_counts(sqlite_path):
    store = SqliteStore(sqlite_path)
    await store.open()
    try:
        run = RunRecord(id="r1", agent="a", agent_version="a-v1", input="x", spec={"name": "a"},
                        status="running", lease_owner="w1",
                        lease_expires_at=time.time() + 60)  # fmt: skip
        await store.create_run(run, [RunStarted(ts=1.0, agent="a", agent_version="a-v1",
                                                input="x")])  # fmt: skip
        seen: list[str] = []
        store.conn.set_trace_callback(seen.append)
        answer = ModelResponded(ts=2.0, step=0, model="m", content="c", tool_calls=0,
                                input_tokens=1, output_tokens=1, cost=0.0, latency_ms=1.0)  # fmt: skip
        summary = RunSummary("running", 1, 0, 1, 1, 0.0)
        await store.append("r1", [answer], first_seq=2, owner="w1", summary=summary)
        # BEGIN, the lease fence, the events, COMMIT (the row waits for the catch-up).
        assert len(seen) == 4, seen
        seen.clear()
        assert await store.heartbeat("w1", ["r1"], 60) == {"r1"}
        assert len(seen) == 1, seen
        await store.release("r1", "w1")
        await store.set_status("r1", "queued")
        seen.clear()
        assert [r.id for r in await store.claim("w2", limit=5, lease_seconds=60)] == ["r1"]
        # BEGIN, pick, lease, COMMIT, and the claimed run's row.
        assert len(seen) == 5, seen
    finally:
        await store.close()
