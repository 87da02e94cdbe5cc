"""Prometheus metrics scraped from a running /metrics endpoint and parsed."""

from __future__ import annotations

import socket

import httpx
from observe_helpers import UNLIMITED, call, lookup, support_agent
from prometheus_client.parser import text_string_to_metric_families

from bosun import Agent, Runtime
from bosun.observe.feed import Observer
from bosun.observe.metrics import Metrics, metrics_app, serve_metrics


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(parsed: dict, name: str, **labels: str) -> float:
    return parsed.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_endpoint_reports_runs_tokens_cost_latency_errors_and_queue(sqlite_path):
    failing = Agent(
        name="flaky",
        model={"provider": "scripted", "name": "m2", "turns": [call("nope"), {"error": "down"}]},
        tools=[lookup],
        limits=UNLIMITED,
    )
    async with Runtime(sqlite_path) as rt:
        metrics = Metrics(rt.store)
        observer = await Observer(rt.store, [metrics]).attach(rt)
        ok = await rt.run(support_agent(), "refund 1234")
        await rt.run(failing, "try")
        await rt.submit(support_agent(), "later")
        await rt.kill("tool:refund", reason="incident 42", by="ops")
        await observer.flush()
        port = free_port()
        server = await serve_metrics(metrics, host="127.0.0.1", port=port)
        try:
            async with httpx.AsyncClient() as client:
                response = await client.get(f"http://127.0.0.1:{port}/metrics")
                missing = await client.get(f"http://127.0.0.1:{port}/other")
        finally:
            server.close()
            await server.wait_closed()
        await observer.close()

    assert response.status_code == 200 and missing.status_code == 404
    assert response.headers["content-type"].startswith("text/plain")
    m = samples(response.text)
    assert value(m, "bosun_runs_finished_total", agent="support", status="succeeded") == 1
    assert value(m, "bosun_runs_finished_total", agent="flaky", status="failed") == 1
    assert value(m, "bosun_steps_total", agent="support", model="gpt-4o-mini") == 3
    assert value(m, "bosun_tokens_total", agent="support", model="gpt-4o-mini", type="input") == 450
    assert (
        abs(value(m, "bosun_cost_usd_total", agent="support", model="gpt-4o-mini") - ok.cost) < 1e-9
    )
    assert value(m, "bosun_model_latency_seconds_count", agent="support", model="gpt-4o-mini") == 3
    assert value(m, "bosun_tool_latency_seconds_count", agent="support", tool="refund") == 1
    assert (
        value(
            m, "bosun_errors_total", agent="flaky", **{"class": "model", "type": "scripted_error"}
        )
        == 1
    )
    assert (
        value(m, "bosun_errors_total", agent="flaky", **{"class": "tool", "type": "unknown_tool"})
        == 1
    )
    assert (
        value(m, "bosun_policy_decisions_total", agent="support", tool="refund", decision="allow")
        == 1
    )
    assert value(m, "bosun_queue_depth") == 1
    assert value(m, "bosun_runs", agent="support", status="queued") == 1
    assert value(m, "bosun_kill_switches_active", scope="tool:refund") == 1
    assert value(m, "bosun_approvals_pending") == 0
    assert ("bosun_approval_oldest_age_seconds", ()) in m
    assert ("bosun_approval_override_ratio", ()) in m
    assert ("bosun_lease_takeovers_total", (("agent", "support"),)) not in m  # none happened


async def test_metrics_asgi_app_serves_the_same_exposition(sqlite_path):
    async with Runtime(sqlite_path) as rt:
        metrics = Metrics(rt.store)
        await rt.submit(support_agent(), "queued")
        transport = httpx.ASGITransport(app=metrics_app(metrics))
        async with httpx.AsyncClient(transport=transport, base_url="http://bosun") as client:
            response = await client.get("/metrics")
    assert response.status_code == 200
    assert value(samples(response.text), "bosun_queue_depth") == 1


async def test_latency_buckets_follow_prometheus_less_or_equal_rule():
    from bosun.journal.events import ToolFinished
    from bosun.observe.feed import Commit, RunInfo

    metrics = Metrics()
    durations_ms = (5.0, 5.001, 120_000.0, 200_000.0)  # on a bound, just above, last, beyond
    events = [
        ToolFinished(ts=1.0, call_id=f"c{i}", tool="t", result=None, duration_ms=ms)
        for i, ms in enumerate(durations_ms)
    ]
    await metrics.handle([Commit(RunInfo("r1", "a"), 2, events)])
    parsed = samples((await metrics.render()).decode())
    bucket = "bosun_tool_latency_seconds_bucket"
    assert value(parsed, bucket, agent="a", tool="t", le="0.005") == 1
    assert value(parsed, bucket, agent="a", tool="t", le="0.01") == 2
    assert value(parsed, bucket, agent="a", tool="t", le="120.0") == 3
    assert value(parsed, bucket, agent="a", tool="t", le="+Inf") == 4
    assert value(parsed, "bosun_tool_latency_seconds_count", agent="a", tool="t") == 4
    total = value(parsed, "bosun_tool_latency_seconds_sum", agent="a", tool="t")
    assert abs(total - sum(durations_ms) / 1000) < 1e-9
