"""A run's journal as a story an auditor can read (`bosun show`, `bosun trace order=1234`).

The goal, the business objects, every event on a timeline (each decision with its rule and
reason), then the actions: what the agent did to which system, who or what allowed it, and
what came back. Built only from the journal (and the watchdog's findings).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson

from bosun.journal.calls import Call, calls, compensation_text
from bosun.journal.events import (
    ApprovalRequested,
    ApprovalResolved,
    AttentionResolved,
    CompensationMissing,
    Event,
    HandedOff,
    LimitReached,
    ModelFailed,
    ModelResponded,
    ModelRouted,
    Notified,
    PolicyDecided,
    ReviewDecided,
    ReviewRequested,
    RunFinished,
    RunFlagged,
    RunNeedsAttention,
    RunPaused,
    RunResumed,
    RunStarted,
    RunWaiting,
    ToolCompensated,
    ToolDefinitionChanged,
    ToolFailed,
    ToolFinished,
    ToolProgress,
    ToolProposed,
    ToolShadowed,
    ToolStarted,
    WaitRequested,
    WaitResolved,
)
from bosun.spec.vocab import CallOutcome, RunStatus
from bosun.store.base import RunRecord


def clip(text: str, width: int = 96) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def as_text(value: object) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def format_cost(cost: float) -> str:
    return f"${cost:.6f}" if cost < 1 else f"${cost:,.2f}"


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"


def format_time(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


@dataclass(slots=True)
class Action:
    """One tool call (`bosun.journal.calls.Call`) with the effect its tool declares."""

    call: Call
    effect: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {**self.call.as_dict(), "effect": self.effect}


def actions(events: list[tuple[int, Event]], spec: dict[str, Any] | None = None) -> list[Action]:
    """The run's tool calls in the order proposed (pass events already redacted)."""
    effects = {t.get("name"): t.get("effect", "") for t in (spec or {}).get("tools", [])}
    return [Action(c, effects.get(c.tool) or "") for c in calls(events)]


OUTCOME_WORDS = {
    CallOutcome.SHADOWED: "shadowed (recorded, not executed)",
    CallOutcome.BLOCKED: "blocked (not executed)",
    CallOutcome.PENDING: "not executed",
    CallOutcome.WAITING: "waiting for approval",
}


def render_actions(items: list[Action]) -> list[str]:
    lines = []
    for i, item in enumerate(items, 1):
        a = item.call
        effect = f" [{item.effect}]" if item.effect else ""
        outcome = OUTCOME_WORDS.get(a.outcome, a.outcome.value)
        if a.waiting_for is not None:
            outcome = f"waiting for {a.waiting_for}"
        lines.append(f"  {i}. {a.tool}({clip(a.arguments, 70)}){effect}: {outcome}")
        why = []
        d = a.decision
        if d is not None:
            why.append(
                f"policy {d.verdict} by rule {d.rule}" + (f" ({d.reason})" if d.reason else "")
            )
        if a.approval is not None:
            edited = " with edited arguments" if a.edited else ""
            why.append(f"{a.approval.decision} by {a.approval.decided_by}{edited}")
        if why:
            lines.append(f"     why: {'; '.join(why)}")
        if isinstance(a.ended, ToolFinished):
            lines.append(f"     got: {clip(as_text(a.ended.result), 80)}")
        elif isinstance(a.ended, ToolFailed):
            lines.append(f"     got: {a.ended.error_type}: {clip(a.ended.message, 70)}")
        for undo in a.compensations:
            lines.append(f"     rollback: {compensation_text(undo)}")
    return lines


def render(run: RunRecord, events: list[tuple[int, Event]], findings: Any = ()) -> str:
    lines: list[str] = []
    end = run.finished_at or (events[-1][1].ts if events else run.created_at)
    lines.append(
        f"run {run.id}  {run.agent_version}  [{run.status}]  "
        f"{run.steps} steps, {run.tool_calls} tool calls, "
        f"{run.input_tokens + run.output_tokens} tokens, {format_cost(run.cost)}, "
        f"{format_duration(end - run.created_at)}"
    )
    tags = " ".join(f"{k}={v}" for k, v in run.tags.items())
    lines.append(
        f"started {format_time(run.created_at)}  tenant {run.tenant}"
        + (f"  user {run.user}" if run.user else "")
        + (f"  session {run.session}" if run.session else "")
        + (f"  tags {tags}" if tags else "")
    )
    lines.append(f"goal     {clip(run.input, 120)}")
    if tags:
        lines.append(f"objects  {tags}")
    t0 = events[0][1].ts if events else run.created_at
    lines.append("timeline")
    for _, event in events:
        text = describe(event)
        if text is not None:
            lines.append(f"  +{event.ts - t0:8.3f}s  {text}")
    done = actions(events, run.spec)
    if done:
        lines.append("actions (what it did, to which system, and why)")
        lines.extend(render_actions(done))
    journaled = {(e.finding, round(e.ts)) for _, e in events if isinstance(e, RunFlagged)}
    extra = [f for f in findings if (f.kind, round(f.ts)) not in journaled]
    for f in extra:
        lines.append(f"watchdog {f.kind} at {format_time(f.ts)}: {f.detail}")
    if run.output:
        lines.append(f"answer: {run.output}")
    elif run.reason and run.status != RunStatus.SUCCEEDED:
        lines.append(f"stopped: {run.reason}")
    return "\n".join(lines)


# Trees up to this size get their team story in `bosun show` (one journal read per run).
TEAM_STORY_MAX = 100


def team_story(tree: list[tuple[RunRecord, list[tuple[int, Event]]]]) -> list[str]:
    """A run tree's teamwork on one timeline: who had the conversation when (handoffs) and
    every review's verdict, across the tree's runs (pass each run's events redacted).
    Empty when the tree has neither."""
    if not tree:
        return []
    t0 = min(run.created_at for run, _ in tree)
    moments: list[tuple[float, str]] = []
    for run, events in tree:
        for _, event in events:
            match event:
                case HandedOff():
                    line = (
                        f"{event.from_agent} -> {event.to_agent} (run {event.run_id}),"
                        f" history {event.history}"
                    )
                case ReviewDecided():
                    line = f"{run.agent}: {_review_text(event)}"
                case _:
                    continue
            moments.append((event.ts, line))
    if not moments:
        return []
    first = min(tree, key=lambda pair: pair[0].created_at)[0]
    lines = ["team (who had the conversation, and the reviews)"]
    lines.append(f"  +{first.created_at - t0:8.3f}s  {first.agent} has the conversation")
    lines += [f"  +{ts - t0:8.3f}s  {text}" for ts, text in sorted(moments)]
    return lines


def _review_text(event: ReviewDecided) -> str:
    verdict = {"veto": "VETOED", "edit": "EDIT REQUESTED", "approve": "APPROVED"}.get(
        event.verdict, event.verdict.upper()
    )
    why = f": {clip(event.reason, 70)}" if event.reason else ""
    return f"{event.tool} {verdict} by reviewer {event.reviewer}{why}"


def describe(event: Event) -> str | None:
    """One line for an event, or None for events shown through another line."""
    match event:
        case RunStarted():
            handed = f" (handed {len(event.history)} earlier message(s))" if event.history else ""
            return f"input    {clip(event.input)}{handed}"
        case HandedOff():
            return (
                f"HANDOFF  {event.from_agent} -> {event.to_agent} (run {event.run_id}),"
                f" history {event.history}: {event.to_agent} has the conversation now"
            )
        case ReviewRequested():
            return (
                f"         review  {event.tool} sent to reviewer {event.reviewer}"
                f" (run {event.run_id}) by rule {event.rule}"
            )
        case ReviewDecided():
            return f"         review  {_review_text(event)}"
        case RunResumed():
            return f"resumed  by {event.worker} from the journal (event {event.from_seq})"
        case ModelResponded():
            what = (
                f"{event.tool_calls} tool call(s)"
                if event.tool_calls
                else f"answer: {clip(event.content or '', 70)}"
            )
            return (
                f"step {event.step + 1:<3} model {event.model} -> {what}  "
                f"({event.input_tokens}+{event.output_tokens} tok, {format_cost(event.cost)}, "
                f"{event.latency_ms:.0f} ms)"
            )
        case ModelRouted():
            why = "; ".join(c for c in event.considered if not c.endswith(": chosen"))
            effort = f" effort {event.effort}" if event.effort else ""
            return (
                f"step {event.step + 1:<3} route {event.route} -> {event.chosen or 'none'}"
                f"{effort} ({event.policy}, p={event.propensity:.2f})"
                + (f"  [{clip(why, 90)}]" if why else "")
            )
        case ModelFailed():
            return (
                f"step {event.step + 1:<3} model FAILED ({event.error_type}): {clip(event.message)}"
            )
        case ToolProposed():
            return f"         propose {event.tool}({clip(event.arguments, 80)})  [{event.call_id}]"
        case ToolStarted():
            retry = f" (attempt {event.attempt})" if event.attempt > 1 else ""
            return f"         start   {event.tool}{retry}"
        case ToolFinished():
            return (
                f"         done    {event.tool} in {event.duration_ms:.1f} ms -> "
                f"{clip(as_text(event.result), 70)}"
            )
        case ToolFailed():
            return f"         error   {event.tool} ({event.error_type}): {clip(event.message, 80)}"
        case LimitReached():
            return f"limit    {event.reason}"
        case RunNeedsAttention():
            return f"PARKED   needs attention: {event.reason}"
        case RunPaused():
            return f"PAUSED   {event.reason}"
        case RunFinished():
            return f"finished {event.status}: {event.reason}"
        case PolicyDecided():
            return (
                f"         policy  {event.tool}: {event.verdict.upper()} by rule {event.rule}"
                + (f" ({clip(event.reason, 60)})" if event.reason else "")
            )
        case ApprovalRequested():
            return (
                f"         approval requested {event.approval_id} from role {event.role} "
                f"for {event.tool}({clip(event.arguments, 60)})"
            )
        case ApprovalResolved():
            edited = (
                f" with edited arguments {clip(event.arguments, 60)}" if event.arguments else ""
            )
            why = f": {event.comment}" if event.comment else ""
            return f"         approval {event.decision} by {event.decided_by}{edited}{why}"
        case RunWaiting():
            return f"WAITING  {event.reason}: {', '.join([*event.approvals, *event.waits])}"
        case WaitRequested():
            what = f"{event.wait_kind} {event.key}".strip()
            until = (
                f" until {time.strftime('%H:%M:%S', time.localtime(event.deadline))}"
                if event.deadline
                else ""
            )
            return (
                f"WAIT     {event.tool} [{event.call_id}] waits for {what}{until} ({event.wait_id})"
            )
        case WaitResolved():
            return (
                f"RESOLVED wait {event.wait_id} {event.status}: "
                f"{clip(orjson.dumps(event.result).decode(), 70)}"
            )
        case ToolShadowed():
            return (
                f"         shadow  {event.tool}({clip(event.arguments, 70)}) recorded, not executed"
            )
        case Notified():
            return f"         notify  {clip(event.message, 90)}"
        case ToolProgress():
            total = "" if event.total is None else f"/{event.total:g}"
            said = f": {clip(event.message, 60)}" if event.message else ""
            return (
                f"         progress {event.tool} [{event.call_id}] {event.progress:g}{total}{said}"
                f" ({event.reports} report{'s' if event.reports != 1 else ''})"
            )
        case ToolCompensated():
            outcome = "undone" if event.ok else f"UNDO FAILED: {event.message}"
            return (
                f"rollback {event.tool} [{event.call_id}] {outcome} by {event.by} via {event.undo}"
            )
        case ToolDefinitionChanged():
            now = "no longer served" if event.live_digest is None else "defined otherwise now"
            return (
                f"CHANGED  {event.tool} ({event.source}) is {now} than {event.agent_version}"
                f" pinned (digest {event.pinned_digest[:12]}): its calls are refused"
            )
        case CompensationMissing():
            return f"rollback {event.tool} [{event.call_id}] has NO UNDO: reverse it by hand"
        case AttentionResolved():
            what = "took effect" if event.outcome == "done" else "did NOT take effect"
            note = f": {event.note}" if event.note else ""
            return f"RESOLVED {event.by} says {event.tool} [{event.call_id}] {what}{note}"
        case RunFlagged():
            paused = " (run paused)" if event.paused else ""
            return f"FLAGGED  by the {event.by}: {event.finding}: {event.detail}{paused}"
    return None
