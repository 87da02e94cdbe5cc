"""The store queries the observe layer reads: usage rows, the metrics snapshot, findings."""

from __future__ import annotations

import time

from observe_helpers import support_agent

from bosun import Runtime
from bosun.store import open_store
from bosun.store.observing import Finding


async def test_usage_rows_attribute_each_model_answer_to_its_run(db_url):
    async with Runtime(db_url) as rt:
        t0 = time.time() - 1
        result = await rt.run(
            support_agent(), "refund 1234", tenant="acme", user="ann", session="s1",
            tags={"order": "1234"},
        )  # fmt: skip
        rows = await rt.store.usage_rows(t0)
    assert result.status == "succeeded", result
    assert len(rows) == 3
    assert {(r.agent, r.tenant, r.user, r.session, r.model) for r in rows} == {
        ("support", "acme", "ann", "s1", "gpt-4o-mini")
    }
    assert rows[0].tags == {"order": "1234"}
    assert sum(r.input_tokens for r in rows) == result.input_tokens
    assert abs(sum(r.cost for r in rows) - result.cost) < 1e-9


async def test_usage_rows_keep_runs_whose_journal_was_removed(db_url):
    async with Runtime(db_url) as rt:
        t0 = time.time() - 1
        result = await rt.run(support_agent(), "refund 1234")
        await rt.store.gc(time.time() + 1)
        rows = await rt.store.usage_rows(t0)
    assert [(r.model, r.input_tokens) for r in rows] == [("(journal removed)", result.input_tokens)]


async def test_metrics_snapshot_counts_live_runs_and_queue(db_url):
    async with Runtime(db_url) as rt:
        await rt.submit(support_agent(), "one")
        await rt.submit(support_agent(), "two")
        await rt.run(support_agent(), "three")
        await rt.kill("agent:other", reason="test", by="ops")
        snap = await rt.store.metrics_snapshot(time.time())
    assert snap.runs == {("support", "queued"): 2}
    assert snap.queue_depth == 2
    assert snap.kill_switches == ("agent:other",)
    assert snap.approvals_pending == 0


async def test_findings_are_recorded_once_per_run_kind_and_position(db_url):
    store = open_store(db_url)
    async with store:
        finding = Finding("run_x", "no_progress", "stalled 5 min", 7, time.time(), "a", "t")
        assert await store.record_finding(finding) is True
        assert await store.record_finding(finding) is False
        later = Finding("run_x", "no_progress", "stalled again", 9, time.time(), "a", "t")
        assert await store.record_finding(later) is True
        found = await store.list_findings(run_id="run_x")
    assert [f.at_seq for f in found] == [7, 9]


async def test_usage_by_root_sums_a_whole_run_tree(db_url):
    from bosun.journal.events import ModelResponded, RunStarted
    from bosun.observe.usage import aggregate
    from bosun.store import RunRecord

    async with Runtime(db_url) as rt:
        t0 = time.time() - 1
        parent = await rt.run(support_agent(), "refund 1234")
        root = await rt.store.get_run(parent.run_id)
        assert root is not None
        for i in range(2):  # two children of the run, spending on their own journals
            child = RunRecord(
                id=f"{parent.run_id}-child{i}", agent="researcher", agent_version=root.agent_version,
                input="look it up", spec=root.spec, parent_id=parent.run_id, root_id=parent.run_id,
            )  # fmt: skip
            answer = ModelResponded(
                ts=time.time(), step=0, model="m", content="found", tool_calls=0,
                input_tokens=100, output_tokens=10, cost=0.25, latency_ms=1.0,
            )  # fmt: skip
            await rt.store.create_run(child, [RunStarted(ts=time.time(), agent="researcher",
                                      agent_version=root.agent_version, input="x"), answer])  # fmt: skip
        lines = aggregate(await rt.store.usage_rows(t0), ("root",))
    assert [line.key for line in lines] == [{"root": parent.run_id}]
    (line,) = lines
    assert len(line.runs) == 3
    assert line.input_tokens == parent.input_tokens + 200
    assert abs(line.cost - (parent.cost + 0.5)) < 1e-9
