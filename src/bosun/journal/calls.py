"""Each tool call of a run, as the journal tells it: the one read projection of calls.

A call is proposed (`ToolProposed`), decided (`PolicyDecided`), perhaps put to a person
(`ApprovalRequested`, `ApprovalResolved`, possibly with edited arguments), started (one
`ToolStarted` per attempt), and ended (`ToolFinished`, `ToolFailed` or `ToolShadowed`);
rollback may compensate it later. Every edge that shows calls (`bosun show` and `bosun
trace`, the API's `/runs/{id}/calls`, the console, the OpenTelemetry trace) reads them
from here, so none keeps its own idea of what a call's outcome or arguments are.

Pass events already redacted (`bosun.journal.redact.Redactor.events`): the projection
copies what it is given. `calls(events)` folds a whole journal; `CallFold` is the same
fold one event at a time, for edges that follow a run live (the tracer), and can forget
calls as they end so a long run holds only its open calls.

The engine keeps its own hot-path state for resuming (`bosun.engine.state`): that is the
write side; this is the read side.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from bosun.journal.events import (
    ApprovalRequested,
    ApprovalResolved,
    AttentionResolved,
    CompensationMissing,
    Event,
    Notified,
    PolicyDecided,
    ReviewDecided,
    ReviewRequested,
    ToolCompensated,
    ToolFailed,
    ToolFinished,
    ToolProgress,
    ToolProposed,
    ToolShadowed,
    ToolStarted,
    WaitRequested,
    WaitResolved,
)
from bosun.spec.vocab import CallOutcome, Verdict

# A `ToolFailed` with one of these error types never ran: something stopped it first.
BLOCKED_ERRORS = frozenset(
    {
        "denied",
        "approval_denied",
        "approval_expired",
        "killed",
        "cancelled",
        "circuit_open",
        "not_executed",
        "vetoed",  # a reviewer agent vetoed it (a review fails closed, see `ReviewDecided`)
        "edit_requested",  # a reviewer asked for an edit; the model may propose it again
        "review_unavailable",
    }
)
_BLOCKING_VERDICTS = frozenset({Verdict.DENY, "killed", "rate_limited"})


@dataclass(slots=True)
class Call:
    """One tool call and everything decided and done about it, in journal order."""

    proposed: ToolProposed
    seq: int  # of the proposal
    decision: PolicyDecided | None = None
    approval_requested: ApprovalRequested | None = None
    approval: ApprovalResolved | None = None
    notified: Notified | None = None
    started_at: float | None = None  # of the latest attempt
    attempts: int = 0
    ended: ToolFinished | ToolFailed | ToolShadowed | None = None
    attention: AttentionResolved | None = None  # a person settled it after a crash
    wait: WaitRequested | None = None  # its tool returned `bosun.Wait`
    wait_resolved: WaitResolved | None = None
    review_requested: ReviewRequested | None = None  # a policy rule sent it to a reviewer
    review: ReviewDecided | None = None
    compensations: tuple[ToolCompensated | CompensationMissing, ...] = ()
    progress: ToolProgress | None = None  # the latest journaled report of a running call

    @property
    def call_id(self) -> str:
        return self.proposed.call_id

    @property
    def tool(self) -> str:
        return self.proposed.tool

    @property
    def step(self) -> int:
        return self.proposed.step

    @property
    def edited(self) -> bool:
        return self.approval is not None and self.approval.arguments is not None

    @property
    def arguments(self) -> str:
        """What ran (or would run): the approver's edit if there was one, else the proposal."""
        if self.approval is not None and self.approval.arguments is not None:
            return self.approval.arguments
        return self.proposed.arguments

    @property
    def outcome(self) -> CallOutcome:
        ended = self.ended
        if isinstance(ended, ToolFinished):
            return CallOutcome.DONE
        if isinstance(ended, ToolFailed):
            blocked = ended.error_type in BLOCKED_ERRORS
            return CallOutcome.BLOCKED if blocked else CallOutcome.FAILED
        if isinstance(ended, ToolShadowed):
            return CallOutcome.SHADOWED
        verdict = self.decision.verdict if self.decision is not None else None
        if verdict in _BLOCKING_VERDICTS:
            return CallOutcome.BLOCKED
        if verdict == Verdict.SHADOW:
            return CallOutcome.SHADOWED
        if self.approval_requested is not None and self.approval is None:
            return CallOutcome.WAITING
        if self.wait is not None and self.wait_resolved is None:
            return CallOutcome.WAITING
        return CallOutcome.PENDING

    @property
    def waiting_for(self) -> str | None:
        """What a waiting call waits for, in words ("approval", "signal stock", ...)."""
        if self.outcome != CallOutcome.WAITING:
            return None
        if self.review_requested is not None and self.review is None:
            return (
                f"review by {self.review_requested.reviewer} (run {self.review_requested.run_id})"
            )
        if self.wait is not None and self.wait_resolved is None:
            return f"{self.wait.wait_kind} {self.wait.key}".strip()
        return "approval"

    @property
    def result(self) -> Any:
        return self.ended.result if isinstance(self.ended, ToolFinished) else None

    @property
    def error(self) -> str | None:
        if isinstance(self.ended, ToolFailed):
            return f"{self.ended.error_type}: {self.ended.message}"
        return None

    @property
    def duration_ms(self) -> float | None:
        if isinstance(self.ended, ToolFinished | ToolFailed):
            return self.ended.duration_ms
        return None

    @property
    def approval_text(self) -> str | None:
        """ "approved by ann with edited arguments: ok", or who it waits for."""
        if self.approval is not None:
            edited = " with edited arguments" if self.edited else ""
            why = f": {self.approval.comment}" if self.approval.comment else ""
            return f"{self.approval.decision} by {self.approval.decided_by}{edited}{why}"
        if self.approval_requested is not None:
            return f"approval requested from role {self.approval_requested.role}"
        if self.review is not None:  # a reviewer agent decided (the shared "who allowed it")
            why = f": {self.review.reason}" if self.review.reason else ""
            return f"review {self.review.verdict} by reviewer {self.review.reviewer}{why}"
        if self.review_requested is not None:
            return f"review requested from reviewer {self.review_requested.reviewer}"
        if self.notified is not None:
            return f"notified: {self.notified.message}"
        return None

    def as_dict(self) -> dict[str, Any]:
        """The call as every edge's JSON shows it (the API's `CallOut`, `bosun show --calls`)."""
        d = self.decision
        return {
            "call_id": self.call_id,
            "step": self.step + 1,
            "tool": self.tool,
            "arguments": self.arguments,
            "edited": self.edited,
            "outcome": self.outcome.value,
            "decision": d.verdict if d else None,
            "rule": d.rule if d else None,
            "reason": d.reason if d else None,
            "approval_id": self.approval_requested.approval_id if self.approval_requested else None,
            "approval": self.approval_text,
            "attempts": self.attempts,
            "result": self.result,
            "error": self.error,
            "duration_ms": self.duration_ms,
            "proposed_at": self.proposed.ts,
            "ended_at": self.ended.ts if self.ended is not None else None,
            "compensated": [compensation_text(c) for c in self.compensations],
        }


def compensation_text(event: ToolCompensated | CompensationMissing) -> str:
    if isinstance(event, CompensationMissing):
        return "has no undo: reverse it by hand"
    return f"undone via {event.undo} by {event.by}" if event.ok else "undo FAILED"


class CallFold:
    """The calls of one run, one event at a time. `apply` returns the call the event was
    about (None for other events, or a call this fold never saw proposed)."""

    __slots__ = ("calls", "forget_ended")

    def __init__(self, *, forget_ended: bool = False):
        self.calls: dict[str, Call] = {}  # by call id, in the order proposed
        self.forget_ended = forget_ended  # drop a call once it ends (a live edge's memory)

    def apply(self, seq: int, event: Event) -> Call | None:
        fold = _FOLDS.get(event.kind)
        return fold(self, seq, event) if fold is not None else None

    def _proposed(self, seq: int, event: ToolProposed) -> Call:
        call = self.calls[event.call_id] = Call(event, seq)
        return call

    def _decided(self, seq: int, event: PolicyDecided) -> Call | None:
        call = self.calls.get(event.call_id)
        if call is not None:
            call.decision = event
        return call

    def _approval_requested(self, seq: int, event: ApprovalRequested) -> Call | None:
        call = self.calls.get(event.call_id)
        if call is not None:
            call.approval_requested = event
        return call

    def _approval_resolved(self, seq: int, event: ApprovalResolved) -> Call | None:
        call = self.calls.get(event.call_id)
        if call is not None:
            call.approval = event
        return call

    def _notified(self, seq: int, event: Notified) -> Call | None:
        call = self.calls.get(event.call_id)
        if call is not None:
            call.notified = event
        return call

    def _progress(self, seq: int, event: ToolProgress) -> Call | None:
        call = self.calls.get(event.call_id)
        if call is not None:
            call.progress = event
        return call

    def _started(self, seq: int, event: ToolStarted) -> Call | None:
        call = self.calls.get(event.call_id)
        if call is not None:
            call.started_at = event.ts
            call.attempts = event.attempt
        return call

    def _ended(self, seq: int, event: ToolFinished | ToolFailed | ToolShadowed) -> Call | None:
        if self.forget_ended:
            call = self.calls.pop(event.call_id, None)
        else:
            call = self.calls.get(event.call_id)
        if call is not None:
            call.ended = event
        return call

    def _attention(self, seq: int, event: AttentionResolved) -> Call | None:
        call = self.calls.get(event.call_id)
        if call is not None:
            call.attention = event
        return call

    def _wait(self, seq: int, event: WaitRequested | WaitResolved) -> Call | None:
        call = self.calls.get(event.call_id)
        if call is not None:
            if isinstance(event, WaitRequested):
                call.wait = event
            else:
                call.wait_resolved = event
        return call

    def _review(self, seq: int, event: ReviewRequested | ReviewDecided) -> Call | None:
        call = self.calls.get(event.call_id)
        if call is not None:
            if isinstance(event, ReviewRequested):
                call.review_requested = event
            else:
                call.review = event
        return call

    def _compensated(self, seq: int, event: ToolCompensated | CompensationMissing) -> Call | None:
        call = self.calls.get(event.call_id)
        if call is not None:
            call.compensations = (*call.compensations, event)
        return call


_FOLDS: dict[str, Callable[[CallFold, int, Any], Call | None]] = {
    ToolProposed.kind: CallFold._proposed,
    PolicyDecided.kind: CallFold._decided,
    ApprovalRequested.kind: CallFold._approval_requested,
    ApprovalResolved.kind: CallFold._approval_resolved,
    Notified.kind: CallFold._notified,
    ToolStarted.kind: CallFold._started,
    ToolProgress.kind: CallFold._progress,
    ToolFinished.kind: CallFold._ended,
    ToolFailed.kind: CallFold._ended,
    ToolShadowed.kind: CallFold._ended,
    AttentionResolved.kind: CallFold._attention,
    ToolCompensated.kind: CallFold._compensated,
    CompensationMissing.kind: CallFold._compensated,
    WaitRequested.kind: CallFold._wait,
    WaitResolved.kind: CallFold._wait,
    ReviewRequested.kind: CallFold._review,
    ReviewDecided.kind: CallFold._review,
}


def calls(events: Iterable[tuple[int, Event]]) -> list[Call]:
    """The run's tool calls in the order proposed (pass events already redacted)."""
    fold = CallFold()
    for seq, event in events:
        fold.apply(seq, event)
    return list(fold.calls.values())


def held_provenance(events: Iterable[tuple[int, Event]], call_id: str) -> dict[str, Any] | None:
    """The provenance of the decision that put this call to a person (the last
    `require_approval` of it): what every edge shows as an approval's suspect arguments."""
    found: dict[str, Any] | None = None
    for _, event in events:
        if (
            isinstance(event, PolicyDecided)
            and event.call_id == call_id
            and event.verdict == Verdict.REQUIRE_APPROVAL
        ):
            found = event.provenance
    return found
