"""The journal's event types.

Each event records one fact about a run, once. Events hold only what is new at
that moment (never the conversation so far), so the bytes stored per step do
not grow with the length of the run: the conversation is rebuilt by reading the
events in order (see `bosun.engine.state`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    kind: ClassVar[str] = "event"
    ts: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class RunStarted(Event):
    kind: ClassVar[str] = "run_started"
    agent: str
    agent_version: str
    input: str
    tenant: str = "default"
    user: str | None = None
    session: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    limits: dict[str, Any] | None = None  # per-run limits, tighter than the agent's


@dataclass(frozen=True, slots=True, kw_only=True)
class RunResumed(Event):
    """A worker took the run over from the journal (after a crash, a restart or a lease expiry)."""

    kind: ClassVar[str] = "run_resumed"
    worker: str
    from_seq: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelRequested(Event):
    kind: ClassVar[str] = "model_requested"
    step: int
    provider: str
    model: str
    messages: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelResponded(Event):
    kind: ClassVar[str] = "model_responded"
    step: int
    model: str
    content: str | None
    tool_calls: int
    input_tokens: int
    output_tokens: int
    cost: float
    latency_ms: float
    finish_reason: str = "stop"


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelFailed(Event):
    kind: ClassVar[str] = "model_failed"
    step: int
    error_type: str
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolProposed(Event):
    kind: ClassVar[str] = "tool_proposed"
    step: int
    call_id: str
    tool: str
    arguments: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolStarted(Event):
    kind: ClassVar[str] = "tool_started"
    call_id: str
    tool: str
    attempt: int
    idempotency_key: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolFinished(Event):
    kind: ClassVar[str] = "tool_finished"
    call_id: str
    tool: str
    result: Any
    duration_ms: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolFailed(Event):
    """A call that produced no result. The model sees `message` and may try again differently."""

    kind: ClassVar[str] = "tool_failed"
    call_id: str
    tool: str
    error_type: str
    message: str
    duration_ms: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class LimitReached(Event):
    kind: ClassVar[str] = "limit_reached"
    limit: str
    value: float
    maximum: float
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RunNeedsAttention(Event):
    """The run cannot go on without a person: e.g. a non-idempotent call was interrupted."""

    kind: ClassVar[str] = "run_needs_attention"
    reason: str
    call_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFinished(Event):
    kind: ClassVar[str] = "run_finished"
    status: str
    reason: str
    output: str | None = None


EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (
        RunStarted,
        RunResumed,
        ModelRequested,
        ModelResponded,
        ModelFailed,
        ToolProposed,
        ToolStarted,
        ToolFinished,
        ToolFailed,
        LimitReached,
        RunNeedsAttention,
        RunFinished,
    )
}
