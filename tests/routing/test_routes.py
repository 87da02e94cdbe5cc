"""Routes with fallbacks through real OpenAI-compatible HTTP servers on 127.0.0.1: one
failing, one slow, one good; the choice journaled with why; breakers shared by two
workers on one database; static rules over the request's features."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
from model_wire import Reply, WireServer

from bosun import Agent, Runtime
from bosun.journal.events import ModelFailed, ModelResponded, ModelRouted
from bosun.observe.timeline import render
from bosun.observe.tracing import export_run
from bosun.observe.usage import usage
from bosun.routing import Candidate, Route, Rule, register_route
from bosun.spec.model import ModelSpec, Pricing


def chat(text: str, model: str) -> dict:
    return {
        "id": "c1",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12},
    }


def candidate(name: str, url: str, **kw) -> Candidate:
    model = ModelSpec(
        provider="openai",
        name=f"{name}-model",
        base_url=f"{url}/v1",
        max_retries=0,
        timeout=5,
        pricing=Pricing(input_per_million=1.0, output_per_million=1.0),
    )
    return Candidate(name=name, model=model, **kw)


@pytest.fixture
def servers():
    failing = WireServer([Reply(status=500, body={"error": {"message": "boom"}})])
    slow = WireServer([Reply(body=chat("late", "slow-model"), delay=5)])
    good = WireServer([Reply(body=chat("hello", "good-model"))])
    with failing, slow, good:
        yield failing, slow, good


async def events_of(rt: Runtime, run_id: str) -> list:
    return [e for _, e in await rt.events(run_id)]


async def test_fallbacks_past_a_failing_and_a_slow_server(servers, sqlite_path):
    failing, slow, good = servers
    register_route(
        Route(
            name="t-fallback",
            candidates=(
                candidate("failing", failing.url),
                candidate("slow", slow.url, timeout=0.3),
                candidate("good", good.url),
            ),
        )
    )
    agent = Agent(name="helper", model="route:t-fallback")
    async with Runtime(sqlite_path) as rt:
        run = await rt.run(agent, "hi")
        events = await events_of(rt, run.run_id)
        lines = await usage(rt.store, ("model",), since=0)
        story = render(await rt.store.get_run(run.run_id), await rt.events(run.run_id))
        exporter = InMemorySpanExporter()
        traces = TracerProvider()
        traces.add_span_processor(SimpleSpanProcessor(exporter))
        await export_run(rt.store, run.run_id, traces)
    assert (run.status, run.output) == ("succeeded", "hello")
    assert "route t-fallback -> good (static, p=1.00)" in story
    [chat_span] = [s for s in exporter.get_finished_spans() if s.name.startswith("chat")]
    assert chat_span.attributes["bosun.route.chosen"] == "good"
    assert chat_span.attributes["gen_ai.response.model"] == "good-model"
    assert "slow: timed out after 0.3 s" in chat_span.attributes["bosun.route.considered"]
    [routed] = [e for e in events if isinstance(e, ModelRouted)]
    assert routed.chosen == "good" and routed.first == "failing" and routed.policy == "static"
    assert tuple(routed.considered) == (
        "failing: failed: server_error",
        "slow: timed out after 0.3 s",
        "good: fallback",
    )
    [answered] = [e for e in events if isinstance(e, ModelResponded)]
    assert answered.model == "good-model" and answered.cost == pytest.approx(12 / 1e6)
    assert events.index(routed) < events.index(answered)
    assert [(line.key["model"], line.model_calls) for line in lines] == [("good-model", 1)]
    assert len(failing.requests) == 1 and len(slow.requests) == 1


async def test_every_candidate_failing_is_journaled(servers, sqlite_path):
    failing, slow, _ = servers
    register_route(
        Route(
            name="t-none",
            candidates=(
                candidate("failing", failing.url),
                candidate("slow", slow.url, timeout=0.2),
            ),
        )
    )
    async with Runtime(sqlite_path) as rt:
        run = await rt.run(Agent(name="helper", model="route:t-none"), "hi")
        events = await events_of(rt, run.run_id)
    assert run.status == "failed" and "no candidate answered" in run.reason
    [routed] = [e for e in events if isinstance(e, ModelRouted)]
    assert routed.chosen == "" and isinstance(events[events.index(routed) + 1], ModelFailed)


async def test_an_open_breaker_is_shared_by_two_workers(servers, sqlite_path):
    failing, _, good = servers
    register_route(
        Route(
            name="t-breaker",
            candidates=(
                candidate("failing", failing.url),
                candidate("good", good.url),
            ),
        )
    )
    agent = Agent(name="helper", model="route:t-breaker")
    async with Runtime(sqlite_path, owner="worker-a") as a:
        for _ in range(3):  # three failures in a row open the breaker
            assert (await a.run(agent, "hi")).status == "succeeded"
    assert len(failing.requests) == 3
    async with Runtime(sqlite_path, owner="worker-b") as b:  # another worker, its own process state
        run = await b.run(agent, "hi")
        events = await events_of(b, run.run_id)
    assert run.status == "succeeded" and len(failing.requests) == 3  # never reached
    [routed] = [e for e in events if isinstance(e, ModelRouted)]
    assert tuple(routed.considered) == ("failing: breaker open", "good: fallback")


async def test_rules_over_features_and_ceilings(servers, sqlite_path):
    _, _, good = servers
    small = candidate("small", good.url, window=100)
    large = candidate("large", good.url)
    costly = Candidate(
        name="costly",
        model=ModelSpec(
            provider="openai",
            name="costly-model",
            base_url=f"{good.url}/v1",
            pricing=Pricing(input_per_million=1e6, output_per_million=1e6),
        ),
    )
    register_route(
        Route(
            name="t-rules",
            candidates=(small, large, costly),
            rules=(Rule(when='tags.tier == "gold"', use=("large",)),),
            max_cost_per_call=1.0,
        )
    )
    agent = Agent(name="helper", model="route:t-rules")
    async with Runtime(sqlite_path) as rt:
        plain = await rt.run(agent, "hi")
        gold = await rt.run(agent, "hi", tags={"tier": "gold"})
        long = await rt.run(agent, "word " * 200)
        picks = [
            next(e for e in await events_of(rt, r.run_id) if isinstance(e, ModelRouted))
            for r in (plain, gold, long)
        ]
    assert [p.chosen for p in picks] == ["small", "large", "large"]
    assert picks[0].considered[2] == "costly: over the cost ceiling"
    assert picks[1].considered[0] == "small: rule 'tags.tier == \"gold\"'"
    assert picks[2].considered[0] == "small: context 250 over window 100"
