"""The journal's event types.

Each event records one fact about a run, once. Events hold only what is new at
that moment (never the conversation so far), so the bytes stored per step do
not grow with the length of the run: the conversation is rebuilt by reading the
events in order (see `bosun.engine.state`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

# Events are plain frozen dataclasses without `__slots__`: orjson encodes a dataclass with a
# `__dict__` about three times faster (0.4 µs instead of 1.4 µs here), and a step writes five.


@dataclass(frozen=True, kw_only=True)
class Event:
    kind: ClassVar[str] = "event"
    ts: float = 0.0


@dataclass(frozen=True, kw_only=True)
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
    # Run trees: a child run names its parent and the tree's root (None for a top-level run,
    # whose root is itself), so the journal alone tells where a run sits in its tree.
    parent_id: str | None = None
    root_id: str | None = None
    # A handoff's receiver: the conversation it was handed, as messages before `input`
    # (user and assistant texts, filtered as the handoff declares; see `HandedOff`).
    history: list[dict[str, str]] | None = None
    # Media given with the input (`--attach`, `attachments=`): artifact references, the
    # bytes stored apart (`bosun.store.artifacts`); the model gets them as content parts.
    attachments: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class RunResumed(Event):
    """A worker took the run over from the journal (after a crash, a restart or a lease expiry)."""

    kind: ClassVar[str] = "run_resumed"
    worker: str
    from_seq: int


@dataclass(frozen=True, kw_only=True)
class ModelRequested(Event):
    """Written by earlier Bosun versions with each answer; read back, no longer written:
    `ModelResponded` and `ModelFailed` say what was asked."""

    kind: ClassVar[str] = "model_requested"
    step: int
    provider: str
    model: str
    messages: int


@dataclass(frozen=True, kw_only=True)
class ModelResponded(Event):
    """A model call and its answer, journaled once it answered (a call in flight is not in the
    journal). It started `latency_ms` before `ts`; `model` is the model that answered,
    `request_model` the one asked for when it was another."""

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
    provider: str = ""
    messages: int = 0  # messages sent, the instructions included
    request_model: str | None = None


@dataclass(frozen=True, kw_only=True)
class ModelRouted(Event):
    """A route chose the model for this step (journaled before its `ModelResponded`, or its
    `ModelFailed` when every candidate failed). `considered` is compact, one
    `name: why` per candidate (`chosen`, `rule ...`, `over ceiling`, `breaker open`,
    `failed: <error_type>`, `fallback`); `features` (sparse `(index, value)` pairs) and
    `propensity` (the probability the policy gave `chosen`) let a new policy be evaluated
    off-line from the journal (`bosun router evaluate`)."""

    kind: ClassVar[str] = "model_routed"
    step: int
    route: str
    chosen: str
    model: str
    considered: tuple[str, ...]
    policy: str = "static"  # static | learned | pinned | paced
    propensity: float = 1.0
    features: tuple[tuple[int, float], ...] = ()
    effort: str | None = None
    first: str = ""  # the candidate the policy picked before any fallback


@dataclass(frozen=True, kw_only=True)
class ModelFailed(Event):
    kind: ClassVar[str] = "model_failed"
    step: int
    error_type: str
    message: str
    provider: str = ""
    model: str = ""  # the model asked for
    messages: int = 0
    latency_ms: float = 0.0


@dataclass(frozen=True, kw_only=True)
class ToolProposed(Event):
    kind: ClassVar[str] = "tool_proposed"
    step: int
    call_id: str
    tool: str
    arguments: str


@dataclass(frozen=True, kw_only=True)
class ToolStarted(Event):
    kind: ClassVar[str] = "tool_started"
    call_id: str
    tool: str
    attempt: int
    idempotency_key: str


@dataclass(frozen=True, kw_only=True)
class ToolFinished(Event):
    kind: ClassVar[str] = "tool_finished"
    call_id: str
    tool: str
    result: Any
    duration_ms: float
    trusted: bool = True  # the tool declared its output trustworthy
    # The whole result, when `result` is an excerpt of it (a long MCP answer): an artifact
    # reference (`bosun.spec.media`); `bosun show RUN --call ID --full` prints it.
    full: dict[str, Any] | None = None


@dataclass(frozen=True, kw_only=True)
class ToolFailed(Event):
    """A call that produced no result. The model sees `message` and may try again differently."""

    kind: ClassVar[str] = "tool_failed"
    call_id: str
    tool: str
    error_type: str
    message: str
    duration_ms: float = 0.0


@dataclass(frozen=True, kw_only=True)
class ToolDefinitionChanged(Event):
    """A tool's source serves another definition than the run's agent version pinned (or
    none: `live_digest` None): the rug-pull defence refuses its calls (a `ToolFailed` with
    `definition_changed` follows) until a new agent version is registered. Journaled at
    the first refused call of the tool in a run; audited."""

    kind: ClassVar[str] = "tool_definition_changed"
    call_id: str
    tool: str
    source: str  # kind:identity
    pinned_digest: str
    live_digest: str | None
    agent_version: str


@dataclass(frozen=True, kw_only=True)
class LimitReached(Event):
    kind: ClassVar[str] = "limit_reached"
    limit: str
    value: float
    maximum: float
    reason: str


@dataclass(frozen=True, kw_only=True)
class RunPaused(Event):
    """The run stopped at a step boundary because someone (or the watchdog) asked it to."""

    kind: ClassVar[str] = "run_paused"
    reason: str


@dataclass(frozen=True, kw_only=True)
class RunNeedsAttention(Event):
    """The run cannot go on without a person: e.g. a non-idempotent call was interrupted."""

    kind: ClassVar[str] = "run_needs_attention"
    reason: str
    call_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class RunFinished(Event):
    kind: ClassVar[str] = "run_finished"
    status: str
    reason: str
    output: str | None = None


@dataclass(frozen=True, kw_only=True)
class PolicyDecided(Event):
    """Governance decided about one proposed call, before anything ran."""

    kind: ClassVar[str] = "policy_decided"
    call_id: str
    tool: str
    verdict: str  # allow | deny | require_approval | shadow | notify | killed | rate_limited
    rule: str
    reason: str
    policy_version: str
    autonomy: str = "auto"
    # Where the call's sink arguments (and any from untrusted content) came from:
    # {arg: {"origin": user|instructions|trusted|untrusted|none, "tool", "call", "n",
    # "sink", "suspect"|"delegated"}}; absent (not stored) when there is nothing to say.
    provenance: dict[str, Any] | None = None


@dataclass(frozen=True, kw_only=True)
class ApprovalRequested(Event):
    kind: ClassVar[str] = "approval_requested"
    approval_id: str
    call_id: str
    tool: str
    arguments: str
    role: str
    rule: str
    reason: str
    expires_at: float | None = None
    on_expiry: str = "deny"
    escalate_to: str | None = None


@dataclass(frozen=True, kw_only=True)
class ApprovalResolved(Event):
    """A person (or the expiry policy) resolved an approval. `decision`: approved | denied | expired."""

    kind: ClassVar[str] = "approval_resolved"
    approval_id: str
    call_id: str
    decision: str
    decided_by: str
    comment: str | None = None
    arguments: str | None = None  # the edited arguments, when the approver changed them


@dataclass(frozen=True, kw_only=True)
class FeedbackRecorded(Event):
    """Structured feedback for later learning: how a person judged what the agent proposed."""

    kind: ClassVar[str] = "feedback_recorded"
    call_id: str
    tool: str
    feedback: str  # approved_as_is | edited | denied | expired
    by: str
    comment: str | None = None


@dataclass(frozen=True, kw_only=True)
class RunWaiting(Event):
    """The run parked durably until its waits settle (people resolve its approvals, a signal,
    a child run, a remote task or a timer arrives); no memory or worker is held.

    What it waits on is what the journal already says: the calls whose `WaitRequested` or
    `ApprovalRequested` has no result yet. So the event names nothing (journals written
    before issue 13's fan-out work list every open wait in `approvals`/`waits`, and a
    parent of 1,000 children re-parking once per child wrote ~11 MB of such lists); it
    counts the child runs it waits on (`children`), which the store compares with the
    child waits still pending as it parks: one that ended meanwhile wakes it at once."""

    kind: ClassVar[str] = "run_waiting"
    reason: str
    approvals: list[str] = field(default_factory=list)  # older journals only
    waits: list[str] = field(default_factory=list)  # older journals only
    children: int = 0  # the open calls parked on a child run's wait


@dataclass(frozen=True, kw_only=True)
class WaitRequested(Event):
    """A tool call returned `bosun.Wait`: the call stays open until the wait settles. The
    store creates the `waits` row in the transaction that journals this event, so the row and
    the event exist together or not at all. `key` is the signal name, child run id or remote
    task id (empty for a timer)."""

    kind: ClassVar[str] = "wait_requested"
    wait_id: str
    call_id: str
    tool: str
    wait_kind: str  # WaitKind
    key: str = ""
    deadline: float | None = None
    on_deadline: Any = None  # the call's result if the deadline passes first


@dataclass(frozen=True, kw_only=True)
class WaitResolved(Event):
    """The wait settled (delivered, expired at its deadline, or cancelled) and its result
    became the call's result. Journaled once, by the worker that holds the run's lease when
    it wakes: the `waits` row is settled exactly once (compare-and-set), and the journal's
    fenced append means a second worker sees this event and does not write it again."""

    kind: ClassVar[str] = "wait_resolved"
    wait_id: str
    call_id: str
    status: str  # WaitStatus: settled | expired | cancelled
    result: Any = None


@dataclass(frozen=True, kw_only=True)
class HandedOff(Event):
    """The agent handed the conversation to another (a `transfer_to_<name>` call): from now
    on the receiver, run `run_id` (a child in this run's tree), has it, and its answer is
    this run's answer. With `RunStarted` of each run this says who had the conversation
    when."""

    kind: ClassVar[str] = "handed_off"
    call_id: str
    from_agent: str
    to_agent: str
    run_id: str  # the receiver's run
    history: str  # History: all | last_user | none
    messages: int  # how many messages of the conversation the receiver was handed


@dataclass(frozen=True, kw_only=True)
class ReviewRequested(Event):
    """A policy rule routed a proposed call to a reviewer agent before it may run: the
    reviewer's run `run_id` (a child in this run's tree) was given the proposed call, and the
    call waits for its verdict (a durable child wait, journaled with this event)."""

    kind: ClassVar[str] = "review_requested"
    call_id: str
    tool: str
    reviewer: str
    rule: str
    run_id: str


@dataclass(frozen=True, kw_only=True)
class ReviewDecided(Event):
    """The reviewer's verdict on a proposed call: `approve` (the call goes on to governance
    and runs), `veto` (not executed; the proposer's model sees `reason`) or `edit` (not
    executed; the proposer sees the edit asked for and may propose again). A reviewer that
    failed, or answered something that is not a verdict, is a veto: reviews fail closed."""

    kind: ClassVar[str] = "review_decided"
    call_id: str
    tool: str
    reviewer: str
    verdict: str  # ReviewVerdict
    reason: str
    run_id: str


@dataclass(frozen=True, kw_only=True)
class ToolShadowed(Event):
    """Shadow mode: what would have been executed, recorded, not executed."""

    kind: ClassVar[str] = "tool_shadowed"
    call_id: str
    tool: str
    arguments: str


@dataclass(frozen=True, kw_only=True)
class Notified(Event):
    kind: ClassVar[str] = "notified"
    call_id: str
    tool: str
    message: str


@dataclass(frozen=True, kw_only=True)
class ToolProgress(Event):
    """A running call said how far it got (an MCP server's progress notifications, a
    Python tool's `ToolContext.progress`), so the console and `bosun show` can tell a long
    call that moves from a hung one. Coalesced by the engine (`engine/progress.py`): the
    first report at once, then at most one every few seconds, and the latest one just
    before the call's result; `reports` is how many reports this event stands for (the
    ones coalesced into it included)."""

    kind: ClassVar[str] = "tool_progress"
    call_id: str
    tool: str
    progress: float
    total: float | None = None
    message: str = ""
    reports: int = 1


@dataclass(frozen=True, kw_only=True)
class ToolCompensated(Event):
    """Rollback ran the undo of an executed effect."""

    kind: ClassVar[str] = "tool_compensated"
    call_id: str
    tool: str
    undo: str
    result: Any = None
    ok: bool = True
    message: str = ""
    by: str = ""


@dataclass(frozen=True, kw_only=True)
class CompensationMissing(Event):
    """Rollback found an executed effect that declares no undo: reported, not skipped silently."""

    kind: ClassVar[str] = "compensation_missing"
    call_id: str
    tool: str
    by: str = ""


@dataclass(frozen=True, kw_only=True)
class RunFlagged(Event):
    """The watchdog saw something wrong: `no_progress`, `repeating` or `overspending`.

    An observation, not a decision: the run goes on unless the watchdog was told to pause it.
    """

    kind: ClassVar[str] = "run_flagged"
    finding: str
    detail: str
    by: str = "watchdog"
    paused: bool = False


@dataclass(frozen=True, kw_only=True)
class AttentionResolved(Event):
    """A person settled an interrupted call of a parked run: it did take effect (with this
    result) or it did not; or (`retry`, no call) let a run that parked with no call open go
    on. The run then goes back to the queue."""

    kind: ClassVar[str] = "attention_resolved"
    call_id: str
    tool: str
    outcome: str  # "done" | "not_done" | "retry"
    by: str
    note: str = ""


@dataclass(frozen=True, kw_only=True)
class ContextFitted(Event):
    """A model call's context did not fit its budget as it stood: what was sent instead
    (`bosun.memory.context`). Journaled with the call, only when something was left out,
    summarised or shortened, so a run that fits costs nothing more per step. With the
    journal it makes the context reproducible: the summary is kept here, never asked for
    again on resume. Its summary's tokens and cost count like any model call's."""

    kind: ClassVar[str] = "context_fitted"
    step: int
    budget: int  # tokens the request could hold
    tokens: int  # tokens sent (estimated)
    sent: int  # messages sent
    dropped: int = 0  # older messages left out without a summary
    summarized: int = 0  # older messages the summary stands for
    shortened: list[str] = field(default_factory=list)  # calls whose results were cut
    truncated: int = 0  # messages cut because even alone they would not fit
    summary: str | None = None  # a new summary (None: none, or the previous one again)
    covers: int = 0  # the oldest messages (session first) the summary stands for
    model: str = ""  # the model that summarised
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0


EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (
        RunStarted,
        ContextFitted,
        RunResumed,
        ModelRequested,
        ModelResponded,
        ModelFailed,
        ModelRouted,
        ToolProposed,
        ToolStarted,
        ToolFinished,
        ToolFailed,
        ToolDefinitionChanged,
        LimitReached,
        RunNeedsAttention,
        RunPaused,
        RunFinished,
        PolicyDecided,
        ApprovalRequested,
        ApprovalResolved,
        FeedbackRecorded,
        RunWaiting,
        WaitRequested,
        WaitResolved,
        HandedOff,
        ReviewRequested,
        ReviewDecided,
        ToolShadowed,
        Notified,
        ToolProgress,
        ToolCompensated,
        CompensationMissing,
        RunFlagged,
        AttentionResolved,
    )
}
