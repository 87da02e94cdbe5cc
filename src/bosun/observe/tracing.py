"""OpenTelemetry traces as a projection of the journal (GenAI semantic conventions).

One trace per run: an `invoke_agent {agent}` span, with a `chat {model}` child per model
call and an `execute_tool {tool}` child per tool call. Spans are built from journal events
with their recorded timestamps, after the fact, never around the step loop's work.

Ids are derived from the run id and the journal position (a hash), so a run resumed by
another worker continues the same trace, and exporting a journal twice yields the same
spans (a backend deduplicates them). The `invoke_agent` span is emitted when the run
finishes; its children are emitted as they complete.

Message, argument and result content is recorded only with `capture_content=True`
(`OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`), always through the run's
`Redactor` (sensitive fields masked, and their values masked in any text); error messages,
which spans always carry, go through it too.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson

from bosun.journal.calls import Call, CallFold
from bosun.journal.events import (
    ApprovalResolved,
    Event,
    ModelFailed,
    ModelRequested,
    ModelResponded,
    ModelRouted,
    PolicyDecided,
    ReviewDecided,
    ReviewRequested,
    RunFinished,
    RunResumed,
    RunStarted,
    ToolFailed,
    ToolFinished,
    ToolProposed,
    ToolShadowed,
    ToolStarted,
)
from bosun.journal.redact import Redactor
from bosun.observe.feed import IDLE_AFTER, Commit, RunInfo
from bosun.spec.vocab import RunStatus
from bosun.store.base import Store

try:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
except ImportError as exc:  # pragma: no cover - the `observe` extra is missing
    raise ImportError("Bosun tracing needs OpenTelemetry: pip install 'bosun[observe]'") from exc

TRACER_NAME = "bosun"
CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"

# Bosun's own attributes (no GenAI convention covers them).
POLICY_DECISION = "bosun.policy.decision"
POLICY_RULE = "bosun.policy.rule"
POLICY_REASON = "bosun.policy.reason"
PROVENANCE = "bosun.provenance"  # .<arg>: where the argument's value came from
PROVENANCE_SUSPECT = "bosun.policy.suspect_args"  # the sinks default policy v2 held
COST = "gen_ai.usage.cost"  # USD


def trace_id_for(run_id: str) -> int:
    return int.from_bytes(hashlib.sha256(b"bosun.trace:" + run_id.encode()).digest()[:16]) or 1


def span_base_for(run_id: str) -> int:
    """A run's 64-bit span-id base; a span's id mixes in its journal position (`span_id`)."""
    return int.from_bytes(hashlib.sha256(b"bosun.span:" + run_id.encode()).digest()[:8])


_MASK64 = (1 << 64) - 1
_MIX = 0x9E3779B97F4A7C15  # odd: multiplying by it is a bijection modulo 2**64
_ROOT, _TOOL = 0, 1 << 40  # position spaces: the run itself, chats by seq, tools by seq | _TOOL
_REVIEW = 1 << 41  # reviews by the seq of their verdict | _REVIEW


def span_id(base: int, position: int) -> int:
    """Distinct positions give distinct ids within a trace (an odd multiplier is a bijection
    modulo 2**64), and the same journal gives the same ids in any process."""
    return ((base ^ (position * _MIX)) & _MASK64) or 1


def capture_content_from_env() -> bool:
    return os.environ.get(CONTENT_ENV, "").strip().lower() in ("1", "true", "yes")


def tracing_enabled_from_env() -> bool:
    """Off unless an OTLP endpoint is configured (and the SDK is not disabled)."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    )


def otlp_exporter_from_env() -> SpanExporter:
    """The OTLP exporter the standard variables ask for (`..._PROTOCOL`: http/protobuf or grpc).

    Endpoint, headers, timeout, compression and certificates are read by the exporter itself
    from `OTEL_EXPORTER_OTLP_*` / `OTEL_EXPORTER_OTLP_TRACES_*`.
    """
    protocol = (
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    if protocol in ("http/protobuf", "http"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpExporter,
        )

        return HttpExporter()
    raise ValueError(
        f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported: use http/protobuf or grpc"
    )


def build_tracer_provider(
    exporter: SpanExporter | None = None, *, resource: Resource | None = None
) -> TracerProvider:
    """A tracer provider exporting in batches (from a background thread) to `exporter`
    (default: OTLP from the environment). `service.name` defaults to `bosun`
    (`OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` are honoured)."""
    provider = TracerProvider(resource=resource or Resource.create({"service.name": "bosun"}))
    provider.add_span_processor(BatchSpanProcessor(exporter or otlp_exporter_from_env()))
    return provider


_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_OK = Status(StatusCode.UNSET)
_SCOPE = InstrumentationScope(TRACER_NAME)
# Called directly in `RunTracer._emit`: a span and its context are made per step, and
# calling a class costs more than calling its `__new__` (see there).
_new_span = ReadableSpan.__new__
_new_context = SpanContext.__new__


def _json(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value, default=str).decode()


class _Asked(NamedTuple):
    """What a chat span needs of the request: from the answer (or failure), or from the
    `model_requested` event older journals hold."""

    provider: str
    model: str
    ts: float


# One tuple per finish reason, shared by every chat span that reports it: a tuple holding
# only strings is not tracked by the garbage collector (once it has survived a collection),
# so neither is a chat span's attribute dict; a list per span would be two more tracked
# objects per step for the collector to walk while spans wait in the batch processor.
_FINISH_REASONS: dict[str, tuple[str]] = {}


def _finish_reasons(reason: str) -> tuple[str]:
    reasons = _FINISH_REASONS.get(reason)
    if reasons is None:
        reasons = (reason,)
        if len(_FINISH_REASONS) < 256:  # providers have a handful; never grow without bound
            _FINISH_REASONS[reason] = reasons
    return reasons


class RunTracer:
    """Folds one run's journal into spans. `apply(seq, event, emit)` in journal order;
    with `emit=False` it only rebuilds state (the part another process already exported)."""

    def __init__(self, out: _Output, info: RunInfo, *, capture_content: bool):
        self.on_end = out.on_end
        self.resource = out.resource
        self.info = info
        self.content = capture_content
        self.redactor = Redactor(info.sensitivity)
        self.run_id = info.run_id
        # Run trees: every run of a tree shares its root's trace, and a child's run span is a
        # child of its parent's run span (and links to it), so a trace viewer shows the tree
        # as one trace. A top-level run is its own root: its trace id is unchanged.
        self.trace_id = trace_id_for(info.root_id or info.run_id)
        self.span_base = span_base_for(info.run_id)
        self.root_id = span_id(self.span_base, _ROOT)
        self.root = SpanContext(self.trace_id, self.root_id, False, _SAMPLED)
        self.parent: SpanContext | None = None
        self.links: tuple[Link, ...] = ()
        if info.parent_id:
            self.parent = SpanContext(
                self.trace_id, span_id(span_base_for(info.parent_id), _ROOT), False, _SAMPLED
            )
            self.links = (Link(self.parent, {"bosun.link": "parent_run"}),)
        common: dict[str, Any] = {"gen_ai.agent.name": info.agent, "bosun.run.id": self.run_id}
        if info.session:
            common["gen_ai.conversation.id"] = info.session
        if info.parent_id:
            common["bosun.run.parent_id"] = info.parent_id
            common["bosun.run.root_id"] = info.root_id or info.parent_id
        self.common = common
        # What every chat with a model (by model, then provider) and every call of a tool
        # shares: the span name and the attributes, built once per run, copied per span.
        self.chat_bases: dict[str, tuple[str, str, dict[str, Any]]] = {}
        self.tool_bases: dict[str, tuple[str, dict[str, Any]]] = {}
        self.started_ts = info.created_at
        self.chats: dict[int, tuple[int, _Asked]] = {}  # step -> (seq, what was asked)
        self.routed: dict[int, ModelRouted] = {}  # step -> a route's choice for it
        # The open calls, from the one projection of calls (ended ones are forgotten).
        self.calls = CallFold(forget_ended=True)
        self.provider = ""
        self.request_model = ""
        self.response_model = ""
        self.input_tokens = self.output_tokens = 0
        self.cost = 0.0
        self.resumed = 0
        self.reviews: dict[str, float] = {}  # call id -> when its review was requested

    # -- the fold --------------------------------------------------------

    def apply(self, seq: int, event: Event, emit: bool) -> None:
        fold = _FOLDS.get(event.kind)
        if fold is not None:
            fold(self, seq, event, emit)

    def _run_started(self, seq: int, event: RunStarted, emit: bool) -> None:
        self.started_ts = event.ts

    def _run_resumed(self, seq: int, event: RunResumed, emit: bool) -> None:
        self.resumed += 1

    def _model_requested(self, seq: int, event: ModelRequested, emit: bool) -> None:
        # Journals written by earlier versions record each call's request as its own event.
        self._asked(event.step, seq, _Asked(event.provider, event.model, event.ts))

    def _asked(self, step: int, seq: int, asked: _Asked) -> None:
        self.chats[step] = (seq, asked)
        self.provider = self.provider or asked.provider
        self.request_model = self.request_model or asked.model

    def _model_responded(self, seq: int, event: ModelResponded, emit: bool) -> None:
        self.input_tokens += event.input_tokens
        self.output_tokens += event.output_tokens
        self.cost += event.cost
        self.response_model = event.model
        if event.step not in self.chats:  # the answer says what was asked, and when
            start = event.ts - event.latency_ms / 1000
            self._asked(
                event.step, seq, _Asked(event.provider, event.request_model or event.model, start)
            )
        opened = self.chats.pop(event.step)
        if emit:
            self._chat(opened[0], event.step, opened[1], event)

    def _model_routed(self, seq: int, event: ModelRouted, emit: bool) -> None:
        self.routed[event.step] = event

    def _model_failed(self, seq: int, event: ModelFailed, emit: bool) -> None:
        if event.step not in self.chats:
            start = event.ts - event.latency_ms / 1000
            self._asked(event.step, seq, _Asked(event.provider, event.model, start))
        opened = self.chats.pop(event.step)
        if emit:
            self._chat(opened[0], event.step, opened[1], event)

    def _tool_proposed(self, seq: int, event: ToolProposed, emit: bool) -> None:
        self.calls.apply(seq, event)
        self.redactor.remember(event)

    def _call_event(self, seq: int, event: PolicyDecided | ToolStarted, emit: bool) -> None:
        self.calls.apply(seq, event)

    def _approval_resolved(self, seq: int, event: ApprovalResolved, emit: bool) -> None:
        self.redactor.remember(event)  # edited arguments
        self.calls.apply(seq, event)

    def _tool_ended(
        self, seq: int, event: ToolFinished | ToolFailed | ToolShadowed, emit: bool
    ) -> None:
        if event.kind == "tool_finished":
            self.redactor.remember(event)
        call = self.calls.apply(seq, event)  # and forgotten: it has ended
        if emit and call is not None:
            self._tool(call, event)

    def _review_requested(self, seq: int, event: ReviewRequested, emit: bool) -> None:
        call = self.calls.apply(seq, event)
        # From the `review` decision: the reviewer's run is created just before this event.
        decided = call.decision if call is not None else None
        self.reviews[event.call_id] = decided.ts if decided is not None else event.ts

    def _review_decided(self, seq: int, event: ReviewDecided, emit: bool) -> None:
        """One span per review, from the request to the verdict (the reviewer's own run
        span, a child of this run's, shows what it did meanwhile)."""
        self.calls.apply(seq, event)
        start = self.reviews.pop(event.call_id, event.ts)
        if not emit:
            return
        attrs = self.common | {
            "gen_ai.operation.name": "review",
            "gen_ai.tool.name": event.tool,
            "gen_ai.tool.call.id": event.call_id,
            "bosun.review.reviewer": event.reviewer,
            "bosun.review.verdict": event.verdict,
            "bosun.review.run_id": event.run_id,
        }
        if event.reason:
            attrs["bosun.review.reason"] = self.redactor.text(event.reason)
        self._emit(
            f"review {event.tool} by {event.reviewer}",
            seq | _REVIEW,
            SpanKind.INTERNAL,
            start,
            event.ts,
            attrs,
        )

    def _run_finished(self, seq: int, event: RunFinished, emit: bool) -> None:
        if emit:
            self._root(event)

    # -- spans -----------------------------------------------------------

    def _emit(
        self,
        name: str,
        position: int,
        kind: SpanKind,
        start: float,
        end: float,
        attrs: dict[str, Any],
        error: str | None = None,
    ) -> None:
        """Hand a finished span straight to the span processor: its times and ids come from
        the journal, so there is nothing to start, time or sample in-process.

        `__new__` then `__init__` is what calling the class does, without the dict of keyword
        arguments that calling a class (rather than a function) builds: half the cost."""
        span_id = ((self.span_base ^ (position * _MIX)) & _MASK64) or 1  # `span_id()`, inline
        span = _new_span(ReadableSpan)
        span.__init__(
            name,
            context=_new_context(SpanContext, self.trace_id, span_id, False, _SAMPLED),
            parent=self.parent if position == _ROOT else self.root,
            links=self.links if position == _ROOT else (),
            resource=self.resource,
            attributes=attrs,
            kind=kind,
            status=_OK if error is None else Status(StatusCode.ERROR, error),
            start_time=int(start * 1e9),
            end_time=int(max(end, start) * 1e9),
            instrumentation_scope=_SCOPE,
        )
        self.on_end(span)

    def _chat(
        self, seq: int, step: int, request: _Asked, outcome: ModelResponded | ModelFailed
    ) -> None:
        shared = self.chat_bases.get(request.model)
        if shared is None or shared[0] != request.provider:
            shared = self.chat_bases[request.model] = (
                request.provider,
                f"chat {request.model}",
                self.common
                | {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": request.provider,
                    "gen_ai.request.model": request.model,
                },
            )
        attrs = shared[2].copy()
        attrs["bosun.step"] = step + 1
        if (routed := self.routed.pop(step, None)) is not None:
            attrs["bosun.route"] = routed.route
            attrs["bosun.route.chosen"] = routed.chosen
            attrs["bosun.route.policy"] = routed.policy
            attrs["bosun.route.propensity"] = routed.propensity
            attrs["bosun.route.considered"] = list(routed.considered)
        error: str | None = None
        if isinstance(outcome, ModelResponded):
            attrs["gen_ai.response.model"] = outcome.model
            attrs["gen_ai.usage.input_tokens"] = outcome.input_tokens
            attrs["gen_ai.usage.output_tokens"] = outcome.output_tokens
            attrs[COST] = outcome.cost
            reason = outcome.finish_reason
            reasons = _FINISH_REASONS.get(reason) or _finish_reasons(reason)
            attrs["gen_ai.response.finish_reasons"] = reasons
            if self.content and outcome.content is not None:
                content = self.redactor.text(outcome.content)
                attrs["gen_ai.output.messages"] = _json(
                    [{"role": "assistant", "parts": [{"type": "text", "content": content}]}]
                )
        else:
            attrs["error.type"] = outcome.error_type
            error = self.redactor.text(outcome.message)
        self._emit(
            shared[1],
            seq,
            SpanKind.CLIENT,
            request.ts,
            outcome.ts,
            attrs,
            error,
        )

    def _tool(self, call: Call, outcome: Event) -> None:
        tool = call.proposed.tool
        call_id = call.proposed.call_id
        shared = self.tool_bases.get(tool)
        if shared is None:
            base = self.common | {
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": tool,
                "gen_ai.tool.type": "function",
            }
            effect = self.info.effects.get(tool)
            if effect:
                base["bosun.tool.effect"] = effect
            source = self.info.sources.get(tool)
            if source is not None:  # served by a source: say which (an MCP server, by name)
                base["bosun.tool.source.kind"], base["bosun.tool.source.name"] = source
                if source[0] == "mcp":
                    base["mcp.method.name"] = "tools/call"
            shared = self.tool_bases[tool] = (f"execute_tool {tool}", base)
        attrs = shared[1].copy()
        attrs["gen_ai.tool.call.id"] = call_id
        if call.attempts:
            attrs["bosun.tool.attempt"] = call.attempts
        decision = call.decision
        if decision is not None:
            attrs[POLICY_DECISION] = decision.verdict
            attrs[POLICY_RULE] = decision.rule
            if decision.reason:
                attrs[POLICY_REASON] = decision.reason
            for arg, origin in (decision.provenance or {}).items():
                # `bosun.provenance.to` = "untrusted read_email#3"; suspect sinks listed.
                where = f" {origin['tool']}#{origin.get('n')}" if origin.get("tool") else ""
                attrs[f"{PROVENANCE}.{arg}"] = f"{origin['origin']}{where}"
                if origin.get("suspect"):
                    attrs.setdefault(PROVENANCE_SUSPECT, []).append(arg)
        if call.review is not None:
            attrs["bosun.review.verdict"] = call.review.verdict
            attrs["bosun.review.reviewer"] = call.review.reviewer
        if call.approval is not None:
            attrs["bosun.approval.decision"] = call.approval.decision
            attrs["bosun.approval.decided_by"] = call.approval.decided_by
        if self.content:
            redactor = self.redactor
            attrs["gen_ai.tool.call.arguments"] = redactor.arguments(tool, call.arguments)
            if isinstance(outcome, ToolFinished):
                attrs["gen_ai.tool.call.result"] = _json(redactor.value(tool, outcome.result))
        error: str | None = None
        if isinstance(outcome, ToolFailed):
            error = self.redactor.text(outcome.message)
            attrs["error.type"] = outcome.error_type
        elif isinstance(outcome, ToolShadowed):
            attrs["bosun.tool.shadowed"] = True
        self._emit(
            shared[0],
            call.seq | _TOOL,
            SpanKind.INTERNAL,
            call.started_at or call.proposed.ts,
            outcome.ts,
            attrs,
            error,
        )

    def _root(self, finished: RunFinished) -> None:
        failed = finished.status != RunStatus.SUCCEEDED
        reason = self.redactor.text(finished.reason) if failed else finished.reason
        attrs = self.common | {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.id": self.info.agent_version or self.info.agent,
            "gen_ai.usage.input_tokens": self.input_tokens,
            "gen_ai.usage.output_tokens": self.output_tokens,
            COST: round(self.cost, 10),
            "bosun.run.status": finished.status,
            # A success's reason is the runtime's own words; a failure's may quote an error.
            "bosun.run.reason": reason,
            "bosun.tenant": self.info.tenant,
        }
        if self.provider:
            attrs["gen_ai.provider.name"] = self.provider
        if self.request_model:
            attrs["gen_ai.request.model"] = self.request_model
        if self.response_model:
            attrs["gen_ai.response.model"] = self.response_model
        if self.info.user:
            attrs["bosun.user"] = self.info.user
        if self.resumed:
            attrs["bosun.run.resumed"] = self.resumed
        for key, value in self.info.tags.items():
            attrs[f"bosun.tag.{key}"] = value
        if failed:
            attrs["error.type"] = finished.status
        if self.content:
            text = self.redactor.text
            attrs["gen_ai.input.messages"] = _json(
                [{"role": "user", "parts": [{"type": "text", "content": text(self.info.input)}]}]
            )
            if finished.output is not None:
                output = text(finished.output)
                attrs["gen_ai.output.messages"] = _json(
                    [{"role": "assistant", "parts": [{"type": "text", "content": output}]}]
                )
        self._emit(
            f"invoke_agent {self.info.agent}",
            _ROOT,
            SpanKind.INTERNAL,
            self.started_ts,
            finished.ts,
            attrs,
            reason if failed else None,
        )


_FOLDS: dict[str, Callable[[RunTracer, int, Any, bool], None]] = {
    "run_started": RunTracer._run_started,
    "run_resumed": RunTracer._run_resumed,
    "model_requested": RunTracer._model_requested,
    "model_responded": RunTracer._model_responded,
    "model_failed": RunTracer._model_failed,
    "model_routed": RunTracer._model_routed,
    "tool_proposed": RunTracer._tool_proposed,
    "policy_decided": RunTracer._call_event,
    "approval_resolved": RunTracer._approval_resolved,
    "tool_started": RunTracer._call_event,
    "tool_finished": RunTracer._tool_ended,
    "tool_failed": RunTracer._tool_ended,
    "tool_shadowed": RunTracer._tool_ended,
    "review_requested": RunTracer._review_requested,
    "review_decided": RunTracer._review_decided,
    "run_finished": RunTracer._run_finished,
}


class TraceSink:
    """The live exporter: an `Observer` sink turning committed events into spans."""

    def __init__(
        self,
        store: Store,
        provider: TracerProvider | None = None,
        *,
        capture_content: bool | None = None,
    ):
        self.store = store
        self.provider = provider or build_tracer_provider()
        self.out = _Output.of(self.provider)
        self.content = capture_content_from_env() if capture_content is None else capture_content
        self._runs: dict[str, RunTracer] = {}

    async def handle(self, commits: Sequence[Commit]) -> None:
        runs, folds = self._runs, _FOLDS
        for commit in commits:
            info, first_seq, events = commit.info, commit.first_seq, commit.events
            run = runs.get(info.run_id)
            if run is None:
                run = runs[info.run_id] = RunTracer(self.out, info, capture_content=self.content)
                if first_seq > 1:  # resumed here, or parked and back: rebuild what came before
                    for seq, event in await self.store.events(info.run_id):
                        if seq >= first_seq:
                            break
                        run.apply(seq, event, emit=False)
            seq = first_seq
            for event in events:  # `run.apply`, without a call per event
                fold = folds.get(event.kind)
                if fold is not None:
                    fold(run, seq, event, True)
                seq += 1
            if isinstance(events[-1], IDLE_AFTER):
                runs.pop(info.run_id, None)

    async def close(self) -> None:
        self.provider.force_flush()


@dataclass(slots=True, frozen=True)
class _Output:
    on_end: Callable[[ReadableSpan], None]
    resource: Resource

    @classmethod
    def of(cls, provider: TracerProvider) -> _Output:
        # The provider's processors (batching, exporting), fed finished spans directly; with
        # one processor (the usual batch exporter), without the fan-out in between.
        active = provider._active_span_processor
        processors = getattr(active, "_span_processors", ())
        target: SpanProcessor = processors[0] if len(processors) == 1 else active
        on_end = target.on_end
        if type(target) is BatchSpanProcessor:
            # Its `on_end` only checks the sampled flag, which every span here has, before
            # queueing: queue directly (a quarter of the cost of handing a span over).
            on_end = getattr(getattr(target, "_batch_processor", None), "emit", on_end)
        return cls(on_end, provider.resource)


async def export_run(
    store: Store,
    run_id: str,
    provider: TracerProvider,
    *,
    capture_content: bool = False,
) -> int:
    """Export a run's whole journal as its trace (the same ids as the live export).
    Returns the number of events read. The `invoke_agent` span is sent only if it finished."""
    from bosun.observe.feed import Observer

    info = await Observer(store, []).info(run_id)
    run = RunTracer(_Output.of(provider), info, capture_content=capture_content)
    events = await store.events(run_id)
    for seq, event in events:
        run.apply(seq, event, emit=True)
    provider.force_flush()
    return len(events)
