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
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from bosun.journal.events import (
    ApprovalResolved,
    Event,
    LimitReached,
    ModelFailed,
    ModelResponded,
    PolicyDecided,
    ReviewDecided,
    RunFinished,
    RunNeedsAttention,
    RunResumed,
    ToolFailed,
    ToolFinished,
)
from bosun.observe.feed import Commit
from bosun.store.base import Store
from bosun.store.observing import MetricsSnapshot

try:
    from prometheus_client import CollectorRegistry, Counter, generate_latest
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
        Metric,
    )
    from prometheus_client.exposition import CONTENT_TYPE_LATEST
    from prometheus_client.utils import floatToGoString
except ImportError as exc:  # pragma: no cover - the `observe` extra is missing
    raise ImportError("Bosun metrics need prometheus-client: pip install 'bosun[observe]'") from exc

if TYPE_CHECKING:
    from bosun.engine.worker import Worker

log = logging.getLogger("bosun.observe")

# Failure classes (`bosun_errors_total{class=...}`).
MODEL, TOOL, POLICY, ORCHESTRATION = "model", "tool", "policy", "orchestration"
POLICY_ERRORS = frozenset(
    {
        "denied",
        "approval_denied",
        "approval_expired",
        "rate_limited",
        "killed",
        "policy",
        "definition_changed",  # the rug-pull defence refused it (bosun.engine.pinned)
        "vetoed",  # a reviewer agent vetoed it (bosun.engine.reviews)
        "edit_requested",
        "review_unavailable",
    }
)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
# Events that move a counter other than the per-step ones (failures, approvals, ends).
_RARE = frozenset(
    {
        "approval_resolved",
        "run_resumed",
        "run_finished",
        "tool_failed",
        "model_failed",
        "limit_reached",
        "run_needs_attention",
        "review_decided",
    }
)


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


class _WorkerCollector:
    """Database failures a worker survived (`Worker.store_errors`), read at scrape time."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    def collect(self) -> Iterator[Metric]:
        errors = CounterMetricFamily(
            "bosun_worker_store_errors",
            "Database failures the worker survived and retried, by where (poll|run|heartbeat)",
            labels=["where"],
        )
        for where, n in self.worker.store_errors.items():
            errors.add_metric([where], n)
        yield errors


class _Histogram:
    """Bucket counts of one labelled histogram, kept as plain numbers (see `_StepCollector`)."""

    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(LATENCY_BUCKETS, value)] += 1
        self.sum += value

    def buckets(self) -> list[tuple[str, float]]:
        out, total = [], 0
        for bound, count in zip((*LATENCY_BUCKETS, float("inf")), self.counts, strict=True):
            total += count
            out.append((floatToGoString(bound), total))
        return out


class _ModelTotals:
    __slots__ = ("cost", "input_tokens", "latency", "output_tokens", "steps")

    def __init__(self) -> None:
        self.steps = self.input_tokens = self.output_tokens = 0
        self.cost = 0.0
        self.latency = _Histogram()


class _StepCollector:
    """The per-step series (steps, tokens, cost, model and tool latency, policy decisions).

    They change several times per step, so the sink keeps them as plain numbers and they
    become Prometheus samples only when scraped: a `prometheus_client` counter takes a lock
    and a label lookup per increment, which made observing cost a tenth of a step.
    """

    def __init__(self) -> None:
        self.models: dict[tuple[str, str], _ModelTotals] = {}
        self.tools: dict[tuple[str, str], _Histogram] = {}
        self.decisions: dict[tuple[str, str, str], int] = {}
        # Tools served by a source (an MCP server): (kind, source) -> calls by outcome, latency
        self.sources: dict[tuple[str, str], _SourceTotals] = {}

    def collect(self) -> Iterator[Metric]:
        steps = CounterMetricFamily(
            "bosun_steps", "Model turns (steps), by agent and model", labels=["agent", "model"]
        )
        tokens = CounterMetricFamily(
            "bosun_tokens",
            "Tokens, by agent, model and type (input|output)",
            labels=["agent", "model", "type"],
        )
        cost = CounterMetricFamily(
            "bosun_cost_usd", "Model spend in USD, by agent and model", labels=["agent", "model"]
        )
        model_latency = HistogramMetricFamily(
            "bosun_model_latency_seconds",
            "Model call latency, by agent and model",
            labels=["agent", "model"],
        )
        for (agent, model), t in sorted(self.models.items()):
            steps.add_metric([agent, model], t.steps)
            tokens.add_metric([agent, model, "input"], t.input_tokens)
            tokens.add_metric([agent, model, "output"], t.output_tokens)
            cost.add_metric([agent, model], t.cost)
            model_latency.add_metric([agent, model], t.latency.buckets(), t.latency.sum)
        tool_latency = HistogramMetricFamily(
            "bosun_tool_latency_seconds",
            "Tool execution time, by agent and tool",
            labels=["agent", "tool"],
        )
        for (agent, tool), h in sorted(self.tools.items()):
            tool_latency.add_metric([agent, tool], h.buckets(), h.sum)
        decisions = CounterMetricFamily(
            "bosun_policy_decisions",
            "Policy decisions, by agent, tool and decision",
            labels=["agent", "tool", "decision"],
        )
        for labels, n in sorted(self.decisions.items()):
            decisions.add_metric(list(labels), n)
        source_calls = CounterMetricFamily(
            "bosun_tool_source_calls",
            "Calls of tools served by a source (an MCP server), by kind, source and outcome",
            labels=["kind", "source", "outcome"],
        )
        source_latency = HistogramMetricFamily(
            "bosun_tool_source_latency_seconds",
            "Execution time of tools served by a source, by kind and source",
            labels=["kind", "source"],
        )
        for (kind, source), totals in sorted(self.sources.items()):
            source_calls.add_metric([kind, source, "ok"], totals.ok)
            source_calls.add_metric([kind, source, "error"], totals.errors)
            source_latency.add_metric([kind, source], totals.latency.buckets(), totals.latency.sum)
        yield from (steps, tokens, cost, model_latency, tool_latency, decisions)
        yield from (source_calls, source_latency)


class _SourceTotals:
    __slots__ = ("errors", "latency", "ok")

    def __init__(self) -> None:
        self.ok = self.errors = 0
        self.latency = _Histogram()


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
        self.errors = Counter(
            "bosun_errors", "Failures by class (model|tool|policy|orchestration) and type",
            ["agent", "class", "type"], registry=r,
        )  # fmt: skip
        self.approval_decisions = Counter(
            "bosun_approval_decisions", "Approvals resolved, by decision and whether edited",
            ["agent", "decision", "edited"], registry=r,
        )  # fmt: skip
        self.reviews = Counter(
            "bosun_reviews", "Reviews of proposed calls, by reviewer agent and verdict"
            " (approve|veto|edit): a reviewer's veto rate is veto / all",
            ["agent", "reviewer", "verdict"], registry=r,
        )  # fmt: skip
        self.takeovers = Counter(
            "bosun_lease_takeovers", "Runs resumed from the journal by a worker", ["agent"],
            registry=r,
        )  # fmt: skip
        self.findings = Counter(
            "bosun_watchdog_findings", "Watchdog findings, by agent and kind", ["agent", "kind"],
            registry=r,
        )  # fmt: skip
        self.per_step = _StepCollector()
        r.register(self.per_step)  # type: ignore[arg-type]
        # By event kind: a dict lookup per event instead of a chain of isinstance checks.
        self._handlers: dict[str, Callable[[str, Any], None]] = {
            "model_responded": self._model_responded,
            "tool_finished": self._tool_finished,
            "policy_decided": self._policy_decided,
            **dict.fromkeys(_RARE, self._count_rare),
        }
        self.collector = _StoreCollector()
        r.register(self.collector)  # type: ignore[arg-type]

    def watch_worker(self, worker: Worker) -> None:
        """Export `bosun_worker_store_errors_total` for this process's worker."""
        self.registry.register(_WorkerCollector(worker))  # type: ignore[arg-type]

    # -- the Observer sink ----------------------------------------------------

    async def handle(self, commits: Sequence[Commit]) -> None:
        for commit in commits:
            self._count(commit.info.agent, commit.events)
            if commit.info.sources:  # only runs with tools from a source (MCP) pay for this
                self._count_sources(commit.info.sources, commit.events)

    def _count_sources(self, sources: dict[str, tuple[str, str]], events: Sequence[Event]) -> None:
        """Calls, errors and latency per source (an MCP server), across agents."""
        for event in events:
            if not isinstance(event, ToolFinished | ToolFailed):
                continue
            source = sources.get(event.tool)
            if source is None or (isinstance(event, ToolFailed) and not event.duration_ms):
                continue  # refused before it reached the source (policy, pins): not a call
            totals = self.per_step.sources.get(source)
            if totals is None:
                totals = self.per_step.sources[source] = _SourceTotals()
            if isinstance(event, ToolFinished):
                totals.ok += 1
            else:
                totals.errors += 1
            totals.latency.observe(event.duration_ms / 1000)

    def _count(self, agent: str, events: Sequence[Event]) -> None:
        handlers = self._handlers
        for event in events:
            handler = handlers.get(event.kind)
            if handler is not None:
                handler(agent, event)

    def _model_responded(self, agent: str, event: ModelResponded) -> None:
        models = self.per_step.models
        totals = models.get((agent, event.model))
        if totals is None:
            totals = models[agent, event.model] = _ModelTotals()
        totals.steps += 1
        totals.input_tokens += event.input_tokens
        totals.output_tokens += event.output_tokens
        totals.cost += event.cost
        totals.latency.observe(event.latency_ms / 1000)

    def _tool_finished(self, agent: str, event: ToolFinished) -> None:
        self._tool(agent, event.tool).observe(event.duration_ms / 1000)

    def _policy_decided(self, agent: str, event: PolicyDecided) -> None:
        decisions = self.per_step.decisions
        key = (agent, event.tool, event.verdict)
        decisions[key] = decisions.get(key, 0) + 1

    def _count_rare(self, agent: str, event: Event) -> None:
        match event:
            case ApprovalResolved():
                edited = "true" if event.arguments else "false"
                self.approval_decisions.labels(agent, event.decision, edited).inc()
            case ReviewDecided():
                self.reviews.labels(agent, event.reviewer, event.verdict).inc()
            case RunResumed():
                self.takeovers.labels(agent).inc()
            case RunFinished():
                self.runs_finished.labels(agent, event.status).inc()
            case ToolFailed() if event.duration_ms:
                self._tool(agent, event.tool).observe(event.duration_ms / 1000)
        kind = error_class(event)
        if kind is not None:
            self.errors.labels(agent, kind, _error_type(event)).inc()

    def _tool(self, agent: str, tool: str) -> _Histogram:
        histogram = self.per_step.tools.get((agent, tool))
        if histogram is None:
            histogram = self.per_step.tools[agent, tool] = _Histogram()
        return histogram

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
