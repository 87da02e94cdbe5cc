"""Prometheus metrics: counters and histograms fed from the journal, gauges read from the store.

    metrics = Metrics(rt.store)
    await Observer(rt.store, [metrics]).attach(rt)
    server = await serve_metrics(metrics, port=9464)     # GET /metrics
    app = metrics_app(metrics)                            # or mount this ASGI app (bosun serve)

Counters and histograms count what this process committed (Prometheus sums them over
workers); the gauges (runs by status, queue depth, approvals, kill switches) come from the
shared database at scrape time, so every worker reports the same values: aggregate them
with `max`, not `sum`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any

from bosun.journal.events import (
    ApprovalResolved,
    Event,
    LimitReached,
    ModelFailed,
    ModelResponded,
    PolicyDecided,
    RunFinished,
    RunNeedsAttention,
    RunResumed,
    ToolFailed,
    ToolFinished,
)
from bosun.observe.feed import RunInfo
from bosun.store.base import Store
from bosun.store.observing import MetricsSnapshot

try:
    from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
    from prometheus_client.exposition import CONTENT_TYPE_LATEST
except ImportError as exc:  # pragma: no cover - the `observe` extra is missing
    raise ImportError("Bosun metrics need prometheus-client: pip install 'bosun[observe]'") from exc

log = logging.getLogger("bosun.observe")

# Failure classes (`bosun_errors_total{class=...}`).
MODEL, TOOL, POLICY, ORCHESTRATION = "model", "tool", "policy", "orchestration"
POLICY_ERRORS = frozenset(
    {"denied", "approval_denied", "approval_expired", "rate_limited", "killed", "policy"}
)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


def error_class(event: Event) -> str | None:
    """Which kind of failure an event records, if any."""
    match event:
        case ModelFailed():
            return MODEL
        case ToolFailed():
            return POLICY if event.error_type in POLICY_ERRORS else TOOL
        case LimitReached() | RunNeedsAttention():
            return ORCHESTRATION
        case RunFinished() if event.status == "killed":
            return POLICY
    return None


class _StoreCollector:
    """Gauges from the last `MetricsSnapshot` (refreshed just before each scrape)."""

    def __init__(self) -> None:
        self.snapshot = MetricsSnapshot()
        self.scrape_error = 0

    def collect(self) -> Iterator[Metric]:
        s = self.snapshot
        runs = GaugeMetricFamily(
            "bosun_runs", "Runs not yet finished, by agent and status", labels=["agent", "status"]
        )
        for (agent, status), n in sorted(s.runs.items()):
            runs.add_metric([agent, status], n)
        yield runs
        yield GaugeMetricFamily(
            "bosun_queue_depth", "Runs queued for a worker", value=s.queue_depth
        )
        yield GaugeMetricFamily(
            "bosun_runs_orphaned",
            "Running runs whose lease expired (waiting for a takeover)",
            value=s.orphaned,
        )
        yield GaugeMetricFamily(
            "bosun_approvals_pending", "Approvals waiting for a person", value=s.approvals_pending
        )
        yield GaugeMetricFamily(
            "bosun_approval_oldest_age_seconds",
            "How long the oldest pending approval has waited",
            value=s.oldest_approval_age,
        )
        resolved = CounterMetricFamily(
            "bosun_approvals_resolved", "Approvals decided by a person (approved or denied)"
        )
        resolved.add_metric([], s.approvals_resolved)
        yield resolved
        overridden = CounterMetricFamily(
            "bosun_approvals_overridden",
            "Approvals a person denied or approved with edited arguments",
        )
        overridden.add_metric([], s.approvals_overridden)
        yield overridden
        yield GaugeMetricFamily(
            "bosun_approval_override_ratio",
            "Share of decided approvals that people denied or edited",
            value=s.approvals_overridden / s.approvals_resolved if s.approvals_resolved else 0.0,
        )
        switches = GaugeMetricFamily(
            "bosun_kill_switches_active", "Active kill switches, by scope", labels=["scope"]
        )
        for scope in s.kill_switches:
            switches.add_metric([scope], 1)
        yield switches
        yield GaugeMetricFamily(
            "bosun_metrics_store_errors", "Scrapes whose store read failed", value=self.scrape_error
        )


class Metrics:
    """An `Observer` sink plus the registry `/metrics` renders."""

    def __init__(self, store: Store | None = None, registry: CollectorRegistry | None = None):
        self.store = store
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.runs_finished = Counter(
            "bosun_runs_finished", "Runs finished, by agent and status", ["agent", "status"],
            registry=r,
        )  # fmt: skip
        self.steps = Counter(
            "bosun_steps", "Model turns (steps), by agent and model", ["agent", "model"], registry=r
        )
        self.tokens = Counter(
            "bosun_tokens", "Tokens, by agent, model and type (input|output)",
            ["agent", "model", "type"], registry=r,
        )  # fmt: skip
        self.cost = Counter(
            "bosun_cost_usd", "Model spend in USD, by agent and model", ["agent", "model"],
            registry=r,
        )  # fmt: skip
        self.model_latency = Histogram(
            "bosun_model_latency_seconds", "Model call latency, by agent and model",
            ["agent", "model"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.tool_latency = Histogram(
            "bosun_tool_latency_seconds", "Tool execution time, by agent and tool",
            ["agent", "tool"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.errors = Counter(
            "bosun_errors", "Failures by class (model|tool|policy|orchestration) and type",
            ["agent", "class", "type"], registry=r,
        )  # fmt: skip
        self.policy_decisions = Counter(
            "bosun_policy_decisions", "Policy decisions, by agent, tool and decision",
            ["agent", "tool", "decision"], registry=r,
        )  # fmt: skip
        self.approval_decisions = Counter(
            "bosun_approval_decisions", "Approvals resolved, by decision and whether edited",
            ["agent", "decision", "edited"], registry=r,
        )  # fmt: skip
        self.takeovers = Counter(
            "bosun_lease_takeovers", "Runs resumed from the journal by a worker", ["agent"],
            registry=r,
        )  # fmt: skip
        self.findings = Counter(
            "bosun_watchdog_findings", "Watchdog findings, by agent and kind", ["agent", "kind"],
            registry=r,
        )  # fmt: skip
        self._model_children: dict[tuple[str, str], tuple[Any, ...]] = {}
        self._tool_children: dict[tuple[str, str], Any] = {}
        self.collector = _StoreCollector()
        r.register(self.collector)  # type: ignore[arg-type]

    # -- the Observer sink ----------------------------------------------------

    async def handle(self, info: RunInfo, first_seq: int, events: Sequence[Event]) -> None:
        agent = info.agent
        for event in events:
            match event:
                case ModelResponded():
                    steps, tokens_in, tokens_out, cost, latency = self._model(agent, event.model)
                    steps.inc()
                    tokens_in.inc(event.input_tokens)
                    tokens_out.inc(event.output_tokens)
                    cost.inc(event.cost)
                    latency.observe(event.latency_ms / 1000)
                case ToolFinished():
                    self._tool(agent, event.tool).observe(event.duration_ms / 1000)
                case PolicyDecided():
                    self.policy_decisions.labels(agent, event.tool, event.verdict).inc()
                case ApprovalResolved():
                    edited = "true" if event.arguments else "false"
                    self.approval_decisions.labels(agent, event.decision, edited).inc()
                case RunResumed():
                    self.takeovers.labels(agent).inc()
                case RunFinished():
                    self.runs_finished.labels(agent, event.status).inc()
            if isinstance(event, ToolFailed) and event.duration_ms:
                self.tool_latency.labels(agent, event.tool).observe(event.duration_ms / 1000)
            kind = error_class(event)
            if kind is not None:
                self.errors.labels(agent, kind, _error_type(event)).inc()

    def _model(self, agent: str, model: str) -> tuple[Any, ...]:
        """The labelled children for (agent, model), looked up once."""
        key = (agent, model)
        children = self._model_children.get(key)
        if children is None:
            children = self._model_children[key] = (
                self.steps.labels(agent, model),
                self.tokens.labels(agent, model, "input"),
                self.tokens.labels(agent, model, "output"),
                self.cost.labels(agent, model),
                self.model_latency.labels(agent, model),
            )
        return children

    def _tool(self, agent: str, tool: str) -> Any:
        child = self._tool_children.get((agent, tool))
        if child is None:
            child = self._tool_children[agent, tool] = self.tool_latency.labels(agent, tool)
        return child

    async def close(self) -> None:
        return None

    # -- rendering -----------------------------------------------------------

    async def refresh(self) -> None:
        if self.store is None:
            return
        try:
            self.collector.snapshot = await self.store.metrics_snapshot(time.time())
        except Exception:
            self.collector.scrape_error += 1
            log.exception("metrics: could not read the store; gauges keep their last values")

    async def render(self) -> bytes:
        """The text exposition format, gauges read from the store now."""
        await self.refresh()
        return generate_latest(self.registry)


def _error_type(event: Event) -> str:
    match event:
        case ModelFailed() | ToolFailed():
            return event.error_type
        case LimitReached():
            return f"limit_{event.limit}"
        case RunNeedsAttention():
            return "needs_attention"
    return getattr(event, "status", event.kind)


CONTENT_TYPE = CONTENT_TYPE_LATEST


def metrics_app(metrics: Metrics) -> Any:
    """An ASGI app answering GET /metrics (mount it in `bosun serve`)."""

    async def app(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"].rstrip("/") not in ("/metrics", ""):
            await _respond(send, 404, b"not found; metrics are at /metrics\n", "text/plain")
            return
        await _respond(send, 200, await metrics.render(), CONTENT_TYPE)

    return app


async def _respond(send: Any, status: int, body: bytes, content_type: str) -> None:
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def serve_metrics(
    metrics: Metrics, *, host: str = "0.0.0.0", port: int = 9464
) -> asyncio.Server:
    """A minimal HTTP server for /metrics on the running event loop (`bosun worker --metrics-port`)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
            method, path, *_ = request.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
            if method != "GET" or path.split("?")[0].rstrip("/") != "/metrics":
                status, body, ctype = "404 Not Found", b"metrics are at /metrics\n", "text/plain"
            else:
                status, body, ctype = "200 OK", await metrics.render(), CONTENT_TYPE
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port)
