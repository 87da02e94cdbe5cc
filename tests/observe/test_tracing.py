"""Traces: the GenAI span tree, its attributes, content opt-in with redaction, resumed runs."""

from __future__ import annotations

import asyncio

import pytest
from observe_helpers import UNLIMITED, call, lookup, support_agent
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bosun import Agent, Limits, Runtime, tool
from bosun.journal.events import ModelRequested, ModelResponded, RunFinished, RunStarted
from bosun.observe.feed import Observer
from bosun.observe.tracing import TraceSink, export_run, trace_id_for
from bosun.store import RunRecord, RunSummary
from bosun.store.sqlite import SqliteStore


def memory_provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


async def traced_run(db: str, agent: Agent, *, content: bool = False, **kw):
    provider, exporter = memory_provider()
    async with Runtime(db) as rt:
        observer = await Observer(
            rt.store, [TraceSink(rt.store, provider, capture_content=content)]
        ).attach(rt)
        result = await rt.run(agent, "Refund order 1234, card 4111-1111", **kw)
        await observer.close()
    return result, exporter.get_finished_spans()


async def test_a_run_is_one_trace_invoke_agent_with_chat_and_tool_children(sqlite_path):
    result, spans = await traced_run(
        sqlite_path, support_agent(), session="conv-7", tags={"order": "1234"}
    )
    names = [s.name for s in spans]
    assert sorted(names) == sorted(
        [
            "chat gpt-4o-mini",
            "chat gpt-4o-mini",
            "chat gpt-4o-mini",
            "execute_tool lookup",
            "execute_tool refund",
            "invoke_agent support",
        ]
    )
    root = next(s for s in spans if s.name == "invoke_agent support")
    assert root.parent is None
    assert {s.context.trace_id for s in spans} == {trace_id_for(result.run_id)}
    for child in spans:
        if child is not root:
            assert child.parent.span_id == root.context.span_id
            assert root.start_time <= child.start_time <= child.end_time <= root.end_time
    a = root.attributes
    assert a["gen_ai.operation.name"] == "invoke_agent"
    assert a["gen_ai.agent.name"] == "support"
    assert a["gen_ai.conversation.id"] == "conv-7"
    assert a["gen_ai.provider.name"] == "scripted"
    assert a["gen_ai.usage.input_tokens"] == result.input_tokens
    assert a["gen_ai.usage.cost"] == pytest.approx(result.cost)
    assert a["bosun.tag.order"] == "1234"
    assert "gen_ai.input.messages" not in a  # content is opt-in

    chat = next(s for s in spans if s.name.startswith("chat"))
    assert chat.attributes["gen_ai.operation.name"] == "chat"
    assert chat.attributes["gen_ai.request.model"] == "gpt-4o-mini"
    assert chat.attributes["gen_ai.response.model"] == "gpt-4o-mini"
    assert chat.attributes["gen_ai.usage.input_tokens"] == 100
    assert chat.attributes["gen_ai.usage.output_tokens"] == 20
    assert chat.kind.name == "CLIENT"

    tool_span = next(s for s in spans if s.name == "execute_tool refund")
    t = tool_span.attributes
    assert t["gen_ai.operation.name"] == "execute_tool"
    assert t["gen_ai.tool.name"] == "refund"
    assert t["gen_ai.tool.call.id"] == "call_1_0"
    assert t["bosun.policy.decision"] == "allow"
    assert t["bosun.policy.rule"]
    assert "gen_ai.tool.call.arguments" not in t


async def test_content_is_exported_only_when_opted_in_and_always_redacted(sqlite_path):
    _, spans = await traced_run(sqlite_path, support_agent(), content=True)
    refund = next(s for s in spans if s.name == "execute_tool refund")
    arguments = refund.attributes["gen_ai.tool.call.arguments"]
    assert "1234" in arguments and "4111" not in arguments and "[redacted]" in arguments
    root = next(s for s in spans if s.name.startswith("invoke_agent"))
    assert "Refunded order 1234." in root.attributes["gen_ai.output.messages"]


async def test_failed_tool_and_failed_run_carry_error_type(sqlite_path):
    agent = Agent(
        name="broken",
        model={"provider": "scripted", "turns": [call("nope"), {"error": "boom"}]},
        tools=[lookup],
        limits=UNLIMITED,
    )
    result, spans = await traced_run(sqlite_path, agent)
    assert result.status == "failed"
    by_name = {s.name: s for s in spans}
    assert by_name["execute_tool nope"].attributes["error.type"] == "unknown_tool"
    failed_chat = [s for s in spans if s.name.startswith("chat") and "error.type" in s.attributes]
    assert failed_chat[0].attributes["error.type"] == "scripted_error"
    assert by_name["invoke_agent broken"].attributes["error.type"] == "failed"
    assert by_name["invoke_agent broken"].status.status_code.name == "ERROR"


gate = asyncio.Event()


@tool(effect="write", idempotent=True)
async def slow_write(order: str) -> str:
    """Write something slowly."""
    await gate.wait()
    return f"written {order}"


async def test_a_run_resumed_by_another_process_continues_the_same_trace(sqlite_path):
    global gate
    gate = asyncio.Event()
    agent = Agent(
        name="resumable",
        model={
            "provider": "scripted",
            "turns": [call("lookup", order="1"), call("slow_write", order="1"), {"content": "ok"}],
        },
        tools=[lookup, slow_write],
        limits=UNLIMITED,
    )
    provider_a, exporter_a = memory_provider()
    async with Runtime(sqlite_path, owner="worker-a") as rt:
        observer = await Observer(rt.store, [TraceSink(rt.store, provider_a)]).attach(rt)
        task = asyncio.create_task(rt.run(agent, "go"))
        while not any(s.name == "execute_tool lookup" for s in exporter_a.get_finished_spans()):
            await observer.flush()
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        task.cancel()  # the worker dies in the middle of slow_write
        with pytest.raises(asyncio.CancelledError):
            await task
        await observer.close()
        run_id = (await rt.store.list_runs(limit=1))[0].id

    gate.set()
    provider_b, exporter_b = memory_provider()
    async with Runtime(sqlite_path, owner="worker-b") as rt:
        observer = await Observer(rt.store, [TraceSink(rt.store, provider_b)]).attach(rt)
        result = await rt.resume(run_id)
        await observer.close()
    assert result.status == "succeeded"

    a, b = exporter_a.get_finished_spans(), exporter_b.get_finished_spans()
    # The model's request for slow_write was committed before the tool ran: worker A exported it.
    assert [s.name for s in a] == ["chat scripted", "execute_tool lookup", "chat scripted"]
    assert sorted(s.name for s in b) == [
        "chat scripted",
        "execute_tool slow_write",
        "invoke_agent resumable",
    ]
    root = next(s for s in b if s.name.startswith("invoke_agent"))
    assert {s.context.trace_id for s in [*a, *b]} == {trace_id_for(run_id)}
    assert all(s.parent.span_id == root.context.span_id for s in [*a, *b] if s is not root)
    assert root.attributes["bosun.run.resumed"] == 1
    assert root.start_time < min(s.start_time for s in a)  # from the journal's first event
    write = next(s for s in b if s.name == "execute_tool slow_write")
    assert write.attributes["bosun.tool.attempt"] == 2


async def test_exporting_a_finished_journal_gives_the_same_spans_as_the_live_export(sqlite_path):
    result, live = await traced_run(sqlite_path, support_agent())
    provider, exporter = memory_provider()
    async with Runtime(sqlite_path) as rt:
        await export_run(rt.store, result.run_id, provider)
    again = exporter.get_finished_spans()
    key = lambda s: (s.context.span_id, s.name, s.start_time, s.end_time)  # noqa: E731
    assert sorted(map(key, again)) == sorted(map(key, live))


def answer(ts: float, **kw) -> ModelResponded:
    return ModelResponded(ts=ts, step=0, model="gpt-4o-2024-08-06", content="hi", tool_calls=0,
                          input_tokens=5, output_tokens=2, cost=0.0, latency_ms=1500.0, **kw)  # fmt: skip


async def export_journal(path: str, events: list) -> list:
    store = SqliteStore(path)
    await store.open()
    run = RunRecord(id="r1", agent="support", agent_version="support-v1", input="hi",
                    spec={"name": "support"}, status="running", lease_owner="w1")  # fmt: skip
    await store.create_run(run, events[:1])
    await store.append("r1", events[1:], first_seq=2, owner="w1",
                       summary=RunSummary("succeeded", 1, 0, 5, 2, 0.0))  # fmt: skip
    provider, exporter = memory_provider()
    await export_run(store, "r1", provider)
    await store.close()
    return [s for s in exporter.get_finished_spans() if s.name.startswith("chat")]


@pytest.mark.parametrize("written_by", ["this version", "an earlier version"])
async def test_a_chat_span_says_what_was_asked_and_when_from_either_journal_layout(
    tmp_path, written_by
):
    started = RunStarted(ts=9.0, agent="support", agent_version="support-v1", input="hi")
    finished = RunFinished(ts=13.0, status="succeeded", reason="the model answered", output="hi")
    if written_by == "this version":  # the answer carries the request
        events = [started, answer(12.0, provider="openai", messages=2, request_model="gpt-4o"),
                  finished]  # fmt: skip
    else:  # the request was an event of its own, committed with the answer
        asked = ModelRequested(ts=10.5, step=0, provider="openai", model="gpt-4o", messages=2)
        events = [started, asked, answer(12.0), finished]
    (chat,) = await export_journal(str(tmp_path / "j.db"), events)
    assert chat.name == "chat gpt-4o"
    assert chat.attributes["gen_ai.request.model"] == "gpt-4o"
    assert chat.attributes["gen_ai.response.model"] == "gpt-4o-2024-08-06"
    assert chat.attributes["gen_ai.provider.name"] == "openai"
    assert (chat.start_time, chat.end_time) == (10_500_000_000, 12_000_000_000)


async def test_a_child_run_joins_its_roots_trace_under_its_parents_run_span(sqlite_path):
    """Run trees in traces: a child's spans are in the root's trace, its run span is a
    child of (and links to) the parent's run span, so a viewer shows the tree as one trace."""
    provider, exporter = memory_provider()
    async with Runtime(sqlite_path) as rt:
        observer = await Observer(rt.store, [TraceSink(rt.store, provider)]).attach(rt)
        parent = await rt.submit(support_agent("planner"), "plan")
        share = Limits(max_steps=10)  # a child holds what it asks for of its parent's budget
        child = await rt.submit(support_agent("helper"), "help", parent=parent, limits=share)
        grandchild = await rt.submit(support_agent("checker"), "check", parent=child, limits=share)
        for run_id in (parent, child, grandchild):
            await rt.resume(run_id)
        await observer.close()
    spans = exporter.get_finished_spans()
    runs = {s.attributes["gen_ai.agent.name"]: s for s in spans if s.name.startswith("invoke")}
    assert {s.context.trace_id for s in spans} == {trace_id_for(parent)}
    assert runs["planner"].parent is None and not runs["planner"].links
    for name, up in (("helper", "planner"), ("checker", "helper")):
        span = runs[name]
        assert span.parent.span_id == runs[up].context.span_id
        assert [link.context.span_id for link in span.links] == [runs[up].context.span_id]
        assert span.attributes["bosun.run.root_id"] == parent
    assert runs["checker"].attributes["bosun.run.parent_id"] == child


async def test_a_child_run_needs_a_live_parent_of_the_same_tenant(sqlite_path):
    from bosun import BosunError, RunNotFound

    async with Runtime(sqlite_path) as rt:
        parent = await rt.submit(support_agent(), "plan", tenant="acme")
        with pytest.raises(RunNotFound):
            await rt.submit(support_agent(), "x", parent=parent, tenant="other")
        with pytest.raises(RunNotFound):
            await rt.submit(support_agent(), "x", parent="run_missing")
        child = await rt.submit(support_agent(), "x", parent=parent, tenant="acme")
        record = await rt.get_run(child)
        assert (record.parent_id, record.root_id) == (parent, parent)
        started = (await rt.events(child))[0][1]
        assert (started.parent_id, started.root_id) == (parent, parent)
        await rt.resume(parent)
        with pytest.raises(BosunError, match="finished run cannot start child runs"):
            await rt.submit(support_agent(), "x", parent=parent, tenant="acme")
