"""A run's state, rebuilt from its journal alone.

The same `apply` is used while a run executes and when it resumes, so a
resumed run is in exactly the state the journal describes, whatever code ran
before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from bosun.govern.provenance import ProvenanceIndex
from bosun.journal.events import (
    ApprovalRequested,
    ApprovalResolved,
    AttentionResolved,
    ContextFitted,
    Event,
    LimitReached,
    ModelResponded,
    ReviewDecided,
    ReviewRequested,
    RunFinished,
    RunNeedsAttention,
    RunPaused,
    RunResumed,
    RunStarted,
    RunWaiting,
    ToolFailed,
    ToolFinished,
    ToolProposed,
    ToolShadowed,
    ToolStarted,
    WaitRequested,
    WaitResolved,
)
from bosun.spec.media import references
from bosun.spec.review import ANSWER, answer_feedback
from bosun.spec.vocab import ApprovalStatus, WaitStatus
from bosun.store.base import (
    NEEDS_ATTENTION,
    PAUSED,
    QUEUED,
    RUNNING,
    WAITING,
    WAITING_APPROVAL,
    RunSummary,
)


@dataclass(slots=True)
class CallState:
    call_id: str
    tool: str
    arguments: str
    step: int
    started: bool = False
    attempts: int = 0
    idempotency_key: str = ""
    approval_id: str | None = None
    approval_status: str | None = None  # None: never asked; pending; approved; denied; expired
    # A durable wait the call is parked on (`bosun.Wait`): pending until WaitResolved.
    wait_id: str | None = None
    wait_status: str | None = None
    wait_kind: str | None = None  # WaitKind: a child run's waits count for the wake rule
    # A reviewer agent's review of the call (`ReviewRequested`): who reviews it, and the
    # verdict once decided (None while pending).
    reviewer: str | None = None
    review_verdict: str | None = None
    # How many proposals in a row, this one included, named this tool with these arguments
    # (the repetition limit counts what the model proposed, never crash re-attempts).
    repeats: int = 1


@dataclass(slots=True)
class RunState:
    run_id: str
    seq: int = 0
    agent: str = ""
    input: str = ""
    tenant: str = "default"
    user: str | None = None
    session: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    started_at: float = 0.0
    limits: dict[str, Any] | None = None
    status: str = QUEUED
    reason: str | None = None
    output: str | None = None
    finished_at: float | None = None
    steps: int = 0
    tool_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    messages: list[dict[str, Any]] = field(default_factory=list)
    open_calls: dict[str, CallState] = field(default_factory=dict)
    # The latest proposal (tool, arguments) and how many times in a row it was proposed.
    last_proposal: tuple[str, str] | None = None
    proposal_streak: int = 0
    # What the run has read, by trust, for the untrusted-content policies.
    read_untrusted: bool = False
    trusted_texts: list[str] = field(default_factory=list)
    untrusted_texts: list[str] = field(default_factory=list)
    # Where each value the run read was first seen (`bosun.govern.provenance`): results are
    # queued here as they arrive and indexed by the first decision that needs them.
    # Not compared: it is a fold of the same events, and indexes lazily (two equal states may
    # have indexed different amounts of it so far).
    provenance: ProvenanceIndex = field(default_factory=ProvenanceIndex, compare=False, repr=False)
    # Whether some message holds artifact references (attachments, media in tool results):
    # the loop expands them into content parts before each model call (`engine/media.py`).
    media: bool = False
    # The final answer waiting for its reviewer (`review_answer`; `engine/answer_review.py`):
    # a pseudo-call `answer-<step>` on tool `answer`, never among `open_calls` (the model
    # proposed no call, so no tool message may answer one).
    answer_review: CallState | None = None
    # The latest summary of older turns (`ContextFitted`) and how many of the oldest
    # messages (the session's first) it stands for; and how many summaries were made.
    context_summary: str | None = None
    # Facts the run recalled (`recall` results), by `subject.attribute`: what freshness
    # policies check an effectful call against (`recalled_facts`).
    recalled: dict[str, dict[str, Any]] = field(default_factory=dict)
    summary_covers: int = 0
    summaries: int = 0

    def _pending(self, call_id: str) -> CallState | None:
        """The open call, or the answer under review, that `call_id` names."""
        call = self.open_calls.get(call_id)
        if call is None and self.answer_review and self.answer_review.call_id == call_id:
            return self.answer_review
        return call

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def summary(self) -> RunSummary:
        return RunSummary(
            status=self.status,
            steps=self.steps,
            tool_calls=self.tool_calls,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cost=self.cost,
            reason=self.reason,
            output=self.output,
            finished_at=self.finished_at,
        )

    def apply(self, event: Event) -> None:
        self.seq += 1
        fold = _FOLDS.get(event.kind)  # by kind: one lookup, not a chain of isinstance checks
        if fold is not None:
            fold(self, event)

    def _model_responded(self, event: ModelResponded) -> None:
        self.steps += 1
        self.input_tokens += event.input_tokens
        self.output_tokens += event.output_tokens
        self.cost += event.cost
        message: dict[str, Any] = {"role": "assistant", "content": event.content}
        if event.tool_calls:
            message["tool_calls"] = []
        self.messages.append(message)

    def _tool_proposed(self, event: ToolProposed) -> None:
        self.messages[-1]["tool_calls"].append(
            {
                "id": event.call_id,
                "type": "function",
                "function": {"name": event.tool, "arguments": event.arguments},
            }
        )
        proposal = (event.tool, event.arguments)
        if proposal == self.last_proposal:
            self.proposal_streak += 1
        else:
            self.last_proposal, self.proposal_streak = proposal, 1
        self.open_calls[event.call_id] = CallState(
            event.call_id, event.tool, event.arguments, event.step, repeats=self.proposal_streak
        )

    def _tool_started(self, event: ToolStarted) -> None:
        call = self.open_calls[event.call_id]
        if not call.started:
            self.tool_calls += 1
        call.started = True
        call.attempts = event.attempt
        call.idempotency_key = event.idempotency_key

    def _tool_finished(self, event: ToolFinished) -> None:
        text = orjson.dumps(event.result).decode()
        if event.trusted:
            self.trusted_texts.append(text)
        else:
            self.read_untrusted = True
            self.untrusted_texts.append(text)
        call = self.open_calls.get(event.call_id)
        self.provenance.tool_result(
            event.tool, event.call_id, event.result, event.trusted, call.arguments if call else ""
        )
        self._close_call(event.call_id, text)
        if event.tool == "recall" and isinstance(event.result, dict):
            self._recall(event.result)
        if '"artifact":"sha256:' in text:  # the result holds media: the model sees it too
            self.media = True
            self.messages[-1]["media"] = [
                r for r in references(event.result) if r.get("type") != "file"
            ]

    def _recall(self, result: dict[str, Any]) -> None:
        for m in result.get("memories") or ():
            if isinstance(m, dict) and m.get("attribute") and m.get("subject"):
                self.recalled[f"{m['subject']}.{m['attribute']}"] = m

    def _tool_failed(self, event: ToolFailed) -> None:
        self._close_call(event.call_id, f"error ({event.error_type}): {event.message}")

    def _tool_shadowed(self, event: ToolShadowed) -> None:
        self._close_call(
            event.call_id,
            f"not executed: {event.tool} runs in shadow mode here; the call was recorded "
            "for review, nothing happened",
        )

    def _approval_requested(self, event: ApprovalRequested) -> None:
        call = self.open_calls[event.call_id]
        call.approval_id = event.approval_id
        call.approval_status = ApprovalStatus.PENDING

    def _approval_resolved(self, event: ApprovalResolved) -> None:
        call = self.open_calls[event.call_id]
        call.approval_id = event.approval_id
        call.approval_status = event.decision
        if event.arguments is not None:
            call.arguments = event.arguments

    def _attention_resolved(self, event: AttentionResolved) -> None:
        self.status = QUEUED
        self.reason = f"resolved by {event.by}: {event.note}" if event.note else None

    def _wait_requested(self, event: WaitRequested) -> None:
        call = self._pending(event.call_id)
        assert call is not None, event.call_id
        call.wait_id = event.wait_id
        call.wait_status = WaitStatus.PENDING
        call.wait_kind = event.wait_kind

    def _wait_resolved(self, event: WaitResolved) -> None:
        call = self._pending(event.call_id)
        if call is not None:
            call.wait_status = event.status

    def _review_requested(self, event: ReviewRequested) -> None:
        if event.tool == ANSWER and event.call_id not in self.open_calls:
            answer = self.messages[-1].get("content") or ""
            self.answer_review = CallState(event.call_id, ANSWER, answer, self.steps)
        call = self._pending(event.call_id)
        assert call is not None, event.call_id
        call.reviewer, call.review_verdict = event.reviewer, None

    def _review_decided(self, event: ReviewDecided) -> None:
        call = self._pending(event.call_id)
        if call is not None:
            call.review_verdict = event.verdict
        if call is not None and call is self.answer_review and event.verdict != "approve":
            # Vetoed, or an edit asked for: the model hears why and answers again.
            self.answer_review = None
            feedback = answer_feedback(event.verdict, event.reviewer, event.reason)
            self.messages.append({"role": "user", "content": feedback})

    def _run_waiting(self, event: RunWaiting) -> None:
        # Parked on people only: `waiting_approval` (A2A's input-required); else `waiting`.
        # Read from the open calls, not the event: it names no waits (older ones listed
        # them, the same ones, as they were taken from this state).
        waits = any(c.wait_status == WaitStatus.PENDING for c in self.open_calls.values())
        waits = waits or bool(self.answer_review and self.answer_review.wait_id)
        self.status = WAITING if waits else WAITING_APPROVAL
        self.reason = event.reason

    def _run_resumed(self, event: RunResumed) -> None:
        self.status = RUNNING

    def _run_started(self, event: RunStarted) -> None:
        self.agent = event.agent
        self.input = event.input
        self.tenant = event.tenant
        self.user = event.user
        self.session = event.session
        self.tags = dict(event.tags)
        self.trusted_texts.append(event.input)
        self.provenance.user(event.input)
        self.started_at = event.ts
        self.limits = event.limits
        self.status = RUNNING
        if event.history:  # a handoff's receiver continues the conversation it was handed
            self.messages.extend(dict(m) for m in event.history)
            for m in event.history:
                if m.get("role") == "user" and isinstance(m.get("content"), str):
                    self.provenance.user(m["content"])
        if event.attachments:
            self.media = True
            parts = [{"type": "text", "text": event.input}, *event.attachments]
            self.messages.append({"role": "user", "content": parts})
        else:
            self.messages.append({"role": "user", "content": event.input})

    def _run_finished(self, event: RunFinished) -> None:
        self.status = event.status
        self.reason = event.reason
        self.output = event.output
        self.finished_at = event.ts

    def _run_needs_attention(self, event: RunNeedsAttention) -> None:
        self.status = NEEDS_ATTENTION
        self.reason = event.reason

    def _limit_reached(self, event: LimitReached) -> None:
        self.reason = event.reason

    def _context_fitted(self, event: ContextFitted) -> None:
        self.input_tokens += event.input_tokens
        self.output_tokens += event.output_tokens
        self.cost += event.cost
        if event.summary is not None:
            self.context_summary, self.summary_covers = event.summary, event.covers
            self.summaries += 1

    def _run_paused(self, event: RunPaused) -> None:
        self.status = PAUSED
        self.reason = event.reason

    def _close_call(self, call_id: str, content: str) -> None:
        self.open_calls.pop(call_id, None)
        self.messages.append({"role": "tool", "tool_call_id": call_id, "content": content})


# What each kind of event changes in the state (other kinds only advance `seq`).
_FOLDS: dict[str, Callable[[RunState, Any], None]] = {
    "model_responded": RunState._model_responded,
    "tool_proposed": RunState._tool_proposed,
    "tool_started": RunState._tool_started,
    "tool_finished": RunState._tool_finished,
    "tool_failed": RunState._tool_failed,
    "tool_shadowed": RunState._tool_shadowed,
    "approval_requested": RunState._approval_requested,
    "approval_resolved": RunState._approval_resolved,
    "attention_resolved": RunState._attention_resolved,
    "run_waiting": RunState._run_waiting,
    "review_requested": RunState._review_requested,
    "review_decided": RunState._review_decided,
    "wait_requested": RunState._wait_requested,
    "wait_resolved": RunState._wait_resolved,
    "run_resumed": RunState._run_resumed,
    "run_started": RunState._run_started,
    "run_finished": RunState._run_finished,
    "run_needs_attention": RunState._run_needs_attention,
    "limit_reached": RunState._limit_reached,
    "run_paused": RunState._run_paused,
    "context_fitted": RunState._context_fitted,
}


def recalled_facts(recalled: dict[str, dict[str, Any]], now: float) -> dict[str, dict[str, Any]]:
    """The CEL `facts` of a run's recalled facts, their age as of `now`."""
    return {
        key: {
            "value": str(m.get("value", "")),
            "source": str(m.get("source", "")),
            "trusted": bool(m.get("trusted")),
            "stale": bool(m.get("stale")) or bool(m.get("valid_until") and m["valid_until"] < now),
            "age": max(0.0, now - float(m.get("observed_at") or 0.0)),
        }
        for key, m in recalled.items()
    }


def rebuild(run_id: str, events: list[tuple[int, Event]]) -> RunState:
    state = RunState(run_id)
    for _, event in events:
        state.apply(event)
    return state
