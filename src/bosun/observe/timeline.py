"""A run's journal as a readable timeline (`bosun show`)."""

from __future__ import annotations

import time

import orjson

from bosun.journal.events import (
    ApprovalRequested,
    ApprovalResolved,
    CompensationMissing,
    Event,
    LimitReached,
    ModelFailed,
    ModelResponded,
    Notified,
    PolicyDecided,
    RunFinished,
    RunNeedsAttention,
    RunResumed,
    RunStarted,
    RunWaiting,
    ToolCompensated,
    ToolFailed,
    ToolFinished,
    ToolProposed,
    ToolShadowed,
    ToolStarted,
)
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


def render(run: RunRecord, events: list[tuple[int, Event]]) -> str:
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
    t0 = events[0][1].ts if events else run.created_at
    for _, event in events:
        text = describe(event)
        if text is not None:
            lines.append(f"  +{event.ts - t0:8.3f}s  {text}")
    if run.output:
        lines.append(f"answer: {run.output}")
    elif run.reason and run.status != "succeeded":
        lines.append(f"stopped: {run.reason}")
    return "\n".join(lines)


def describe(event: Event) -> str | None:
    """One line for an event, or None for events shown through another line."""
    match event:
        case RunStarted():
            return f"input    {clip(event.input)}"
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
            return f"WAITING  {event.reason}: {', '.join(event.approvals)}"
        case ToolShadowed():
            return (
                f"         shadow  {event.tool}({clip(event.arguments, 70)}) recorded, not executed"
            )
        case Notified():
            return f"         notify  {clip(event.message, 90)}"
        case ToolCompensated():
            outcome = "undone" if event.ok else f"UNDO FAILED: {event.message}"
            return (
                f"rollback {event.tool} [{event.call_id}] {outcome} by {event.by} via {event.undo}"
            )
        case CompensationMissing():
            return f"rollback {event.tool} [{event.call_id}] has NO UNDO: reverse it by hand"
    return None
