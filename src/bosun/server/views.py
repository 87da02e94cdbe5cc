"""What the console shows, computed from the journal: a run's steps in plain words, and
the SVG bar charts of the Costs page (rendered here, so the page needs no chart library)."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

import orjson
from markupsafe import Markup

from bosun.engine.state import RunState
from bosun.journal.calls import Call, calls
from bosun.journal.codec import event_to_dict
from bosun.journal.events import (
    ApprovalRequested,
    ApprovalResolved,
    Event,
    ModelFailed,
    ModelResponded,
    Notified,
    PolicyDecided,
    RunStarted,
    ToolFailed,
    ToolFinished,
    ToolProposed,
    ToolShadowed,
    ToolStarted,
    WaitRequested,
    WaitResolved,
)
from bosun.observe.timeline import describe, format_cost, format_duration
from bosun.spec.media import is_reference, references

VERDICT_WORDS = {
    "allow": "allowed",
    "deny": "denied",
    "require_approval": "needs approval",
    "shadow": "shadowed (recorded, not executed)",
    "notify": "allowed, with notification",
    "review": "sent to a reviewer agent",
    "killed": "stopped by a kill switch",
    "rate_limited": "rate limited",
}


def pretty(value: Any) -> str:
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode()


@dataclass
class CallView:
    """One call (`bosun.journal.calls.Call`) in the console's words."""

    call: Call
    raw: list[dict[str, Any]] = field(default_factory=list)

    @property
    def call_id(self) -> str:
        return self.call.call_id

    @property
    def tool(self) -> str:
        return self.call.tool

    @property
    def arguments(self) -> str:
        return pretty(self.call.arguments)

    @property
    def outcome(self) -> str:
        return self.call.outcome.value

    @property
    def verdict(self) -> str | None:
        return self.call.decision.verdict if self.call.decision else None

    @property
    def verdict_text(self) -> str | None:
        verdict = self.verdict
        return VERDICT_WORDS.get(verdict, verdict) if verdict else None

    @property
    def rule(self) -> str | None:
        return self.call.decision.rule if self.call.decision else None

    @property
    def policy_reason(self) -> str | None:
        return self.call.decision.reason if self.call.decision else None

    @property
    def approval(self) -> str | None:
        return self.call.approval_text

    @property
    def result(self) -> str | None:
        if isinstance(self.call.ended, ToolShadowed):
            return "(shadow mode: recorded, not executed)"
        return pretty(self.call.result) if isinstance(self.call.ended, ToolFinished) else None

    @property
    def error(self) -> str | None:
        return self.call.error

    @property
    def duration_ms(self) -> float | None:
        return self.call.duration_ms

    @property
    def attempts(self) -> int:
        return self.call.attempts


@dataclass(frozen=True)
class PromptMessage:
    """One message of what a model call was sent, as people read it."""

    role: str
    content: str
    more: int = 0  # characters cut from a long content


PROMPT_CHARS = 4000  # of each message's content shown; the raw events have all of it


@dataclass
class StepView:
    number: int
    at: float
    prompt: list[PromptMessage] = field(default_factory=list)  # what the model was sent
    model: str = ""
    decision: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    latency_ms: float = 0.0
    calls: list[CallView] = field(default_factory=list)
    raw: list[dict[str, Any]] = field(default_factory=list)

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def duration(self) -> str:
        tools = sum(c.duration_ms or 0 for c in self.calls)
        return format_duration((self.latency_ms + tools) / 1000)

    @property
    def cost_text(self) -> str:
        return format_cost(self.cost)


@dataclass
class NoteView:
    at: float
    text: str
    level: str  # info | warn | error
    raw: list[dict[str, Any]] = field(default_factory=list)


def _prompt(system: list[dict[str, Any]], messages: list[dict[str, Any]]) -> list[PromptMessage]:
    out = []
    for m in [*system, *messages]:
        text = m.get("content") or ""
        if isinstance(text, list):  # content parts: the texts, and media by name
            text = " ".join(
                str(c.get("text", ""))
                if c.get("type") == "text"
                else f"[{c.get('type')}: {c.get('name') or c.get('artifact', '')}]"
                for c in text
            )
        for c in m.get("tool_calls") or ():
            function = c.get("function", {})
            text += f"\n→ {function.get('name')}({function.get('arguments')})"
        if m.get("role") == "tool":
            text = f"[{m.get('tool_call_id')}] {text}"
        text = text.strip()
        more = max(0, len(text) - PROMPT_CHARS)
        out.append(PromptMessage(m.get("role", "?"), text[:PROMPT_CHARS], more))
    return out


# Shown inside their call; rollback and attention events are notes of their own.
_CALL_KINDS = frozenset(
    e.kind
    for e in (
        PolicyDecided, ApprovalRequested, ApprovalResolved, ToolStarted, ToolFinished,
        ToolFailed, ToolShadowed, Notified, WaitRequested, WaitResolved,
    )
)  # fmt: skip


def media(events: list[tuple[int, Event]]) -> list[dict[str, Any]]:
    """The artifacts a run's journal references (attachments, tools' media), once each,
    with where each came from: the run page shows them (served by the API, by reference)."""
    seen: dict[str, dict[str, Any]] = {}
    for _, event in events:
        if isinstance(event, RunStarted):
            found, where = event.attachments, "input"
        elif isinstance(event, ToolFinished):
            found, where = references(event.result), f"{event.tool} ({event.call_id})"
        else:
            continue
        for ref in found:
            if is_reference(ref) and ref["artifact"] not in seen:
                seen[ref["artifact"]] = {"type": "file", **ref, "where": where}
    return list(seen.values())


def timeline(events: list[tuple[int, Event]], instructions: str = "") -> list[StepView | NoteView]:
    """Steps (what the model was sent, its decision, then each tool call with its policy
    decision, approval, result and duration) and notes (start, waits, limits, finish), in
    journal order. The prompt of each step is rebuilt from the journal exactly as the run
    builds it (`bosun.engine.state`), so it is what the model saw (redacted as shown)."""
    items: list[StepView | NoteView] = []
    steps: dict[int, StepView] = {}
    by_id = {c.call_id: c for c in calls(events)}  # the one projection of calls
    views: dict[str, CallView] = {}
    t0 = events[0][1].ts if events else 0.0
    state = RunState("")
    system = [{"role": "system", "content": instructions}] if instructions else []

    def step(n: int, ts: float) -> StepView:
        if n not in steps:
            steps[n] = StepView(number=n + 1, at=ts - t0)
            items.append(steps[n])
        return steps[n]

    for seq, event in events:
        raw = event_to_dict(event, seq)
        if isinstance(event, ModelResponded):
            step(event.step, event.ts).prompt = _prompt(system, state.messages)
        state.apply(event)
        match event:
            case ModelResponded():
                s = step(event.step, event.ts)
                s.model = event.model
                s.input_tokens += event.input_tokens
                s.output_tokens += event.output_tokens
                s.cost += event.cost
                s.latency_ms += event.latency_ms
                s.decision = (
                    f"decided to call {event.tool_calls} tool{'s' if event.tool_calls != 1 else ''}"
                    if event.tool_calls
                    else f"answered: {event.content or ''}"
                )
                s.raw.append(raw)
            case ToolProposed():
                call = CallView(by_id[event.call_id], [raw])
                views[event.call_id] = call
                step(event.step, event.ts).calls.append(call)
            case _ if event.kind in _CALL_KINDS and event.call_id in views:  # type: ignore[attr-defined]
                views[event.call_id].raw.append(raw)  # type: ignore[attr-defined]
            case ModelFailed():
                items.append(NoteView(event.ts - t0, describe(event) or event.kind, "error", [raw]))
            case _:
                text = describe(event)
                if text is not None:
                    level = "info"
                    if event.kind in (
                        "run_needs_attention",
                        "limit_reached",
                        "run_waiting",
                        "run_paused",
                    ) or (
                        event.kind == "review_decided"
                        and getattr(event, "verdict", "") != "approve"
                    ):
                        level = "warn"
                    if event.kind == "run_finished" and getattr(event, "status", "") != "succeeded":
                        level = "error"
                    items.append(NoteView(event.ts - t0, " ".join(text.split()), level, [raw]))
    return items


# -- charts ------------------------------------------------------------------------


def bar_chart(
    points: list[tuple[str, float]], *, unit: str = "", title: str, height: int = 180
) -> Markup:
    """Vertical bars, one per point (e.g. per day), with the value on hover and in text."""
    width = 640
    if not points:
        return Markup(f'<p class="empty">No data for {html.escape(title)} in this period.</p>')
    top = max(v for _, v in points) or 1.0
    pad, label_h = 8, 34
    slot = (width - 2 * pad) / len(points)
    bar_w = max(2.0, slot * 0.7)
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height + label_h}" role="img"'
        f' aria-label="{html.escape(title)}">'
    ]
    every = max(1, len(points) // 10)
    for i, (label, value) in enumerate(points):
        h = (value / top) * (height - 20)
        x = pad + i * slot + (slot - bar_w) / 2
        y = height - h
        text = f"{label}: {_fmt(value, unit)}"
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}">'
            f"<title>{html.escape(text)}</title></rect>"
        )
        if i % every == 0:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{height + 14}" text-anchor="middle">'
                f"{html.escape(label[5:] if len(label) == 10 else label[:10])}</text>"
            )
    parts.append(
        f'<text x="{pad}" y="12" class="max">max {html.escape(_fmt(top, unit))}</text></svg>'
    )
    return Markup("".join(parts))


def hbar_chart(rows: list[tuple[str, float]], *, unit: str = "", title: str) -> Markup:
    """Horizontal bars, one per group (agent, tag, user), largest first."""
    if not rows:
        return Markup(f'<p class="empty">No data for {html.escape(title)} in this period.</p>')
    rows = rows[:12]
    width, row_h, label_w = 640, 24, 180
    top = max(v for _, v in rows) or 1.0
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {row_h * len(rows) + 4}" role="img"'
        f' aria-label="{html.escape(title)}">'
    ]
    for i, (label, value) in enumerate(rows):
        y = i * row_h + 2
        w = (value / top) * (width - label_w - 110)
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">'
            f"{html.escape(label[:28])}</text>"
            f'<rect x="{label_w}" y="{y + 3}" width="{max(w, 1):.1f}" height="{row_h - 8}">'
            f"<title>{html.escape(label)}: {html.escape(_fmt(value, unit))}</title></rect>"
            f'<text x="{label_w + w + 6:.1f}" y="{y + 15}">{html.escape(_fmt(value, unit))}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _fmt(value: float, unit: str) -> str:
    if unit == "$":
        return format_cost(value)
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    return f"{value:,.0f}"
