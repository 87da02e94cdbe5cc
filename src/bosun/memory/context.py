"""Fitting a model call's context into its budget (the model's window, less a reserve).

Before every model call the loop asks `ContextFitter.fits`: an estimate kept up to date as
messages are added (one `len` per new message), so a run that fits pays nothing more. When
it does not fit, `fit` builds what is sent instead, in this order:

1. Tool results estimated past `max_tool_result` tokens are shortened to their head and a
   reference (the whole result stays in the journal: `bosun show RUN --calls`, the calls
   API, `bosun show RUN --call ID --full`).
2. The latest messages are kept, as many as fit (at least `keep_messages` when they fit;
   never starting on a tool result whose call was left out), and the run's own input.
3. Older messages are summarised by the declared model (`summarize_with`), the summary
   rolling forward (the previous summary and the newly left-out messages make the next),
   or dropped when no model is declared.
4. Whatever still does not fit (one message larger than the window) is cut.

What was done is returned as a `ContextFitted` event for the journal. Token counts are
estimates (`chars_per_token`, 3 by default, errs on the side of sending less); the budget
is never larger than the window.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from bosun.journal.events import ContextFitted
from bosun.spec.context import DEFAULT_WINDOW, ContextSpec

PART_TOKENS = 800  # an image or audio part, estimated
MESSAGE_TOKENS = 4  # each message's own overhead
SUMMARY_SHARE = 4  # a summary may take up to 1/4 of the budget
SUMMARY_PROMPT = (
    "Summarise the conversation below for the assistant who continues it: keep every fact,"
    " name, number, decision and open question; drop greetings and repetition. Answer with"
    " the summary only."
)

# (messages to summarise, the previous summary, turn) -> (summary, usage tokens in/out,
# cost, model): the loop's wrapper over the declared model.
Summarizer = Callable[
    [list[dict[str, Any]], str | None, int], Awaitable[tuple[str, int, int, float, str]]
]


def _text_chars(content: Any) -> tuple[int, int]:
    if isinstance(content, str):
        return len(content), 0
    if isinstance(content, list):
        chars = parts = 0
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text":
                chars += len(part.get("text") or "")
            else:
                parts += 1
        return chars, parts
    return (0, 0) if content is None else (len(str(content)), 0)


@dataclass
class Fitted:
    messages: list[dict[str, Any]]
    event: ContextFitted


@dataclass
class ContextFitter:
    """One run's budget and its running estimate (see the module docstring)."""

    spec: ContextSpec
    window: int
    fixed: int  # the system prompt and the tool schemas
    sizes: list[int] = field(default_factory=list)  # per message of the run
    total: int = 0
    session: int = 0  # the session's conversation
    session_len: int = -1

    @classmethod
    def of(
        cls, spec: ContextSpec, window: int | None, system: list[dict[str, Any]], tools: list[Any]
    ) -> ContextFitter:
        fitter = cls(spec, window or DEFAULT_WINDOW, 0)
        fitter.fixed = sum(fitter.estimate(m) for m in system)
        fitter.fixed += round(len(orjson.dumps(tools)) / spec.chars_per_token) if tools else 0
        return fitter

    @property
    def budget(self) -> int:
        declared = self.spec.budget or self.window - self.spec.reserve
        return max(1, min(declared, self.window))

    def estimate(self, message: dict[str, Any]) -> int:
        chars, parts = _text_chars(message.get("content"))
        for call in message.get("tool_calls") or ():
            chars += len(call["function"]["arguments"]) + len(call["function"]["name"]) + 16
        parts += len(message.get("media") or ())
        return MESSAGE_TOKENS + round(chars / self.spec.chars_per_token) + parts * PART_TOKENS

    def fits(self, session: list[dict[str, Any]], messages: list[dict[str, Any]]) -> bool:
        """Whether everything fits as it is; cheap (only new messages are measured)."""
        if self.session_len != len(session):
            self.session, self.session_len = sum(self.estimate(m) for m in session), len(session)
        sizes = self.sizes
        for message in messages[len(sizes) :]:
            size = self.estimate(message)
            sizes.append(size)
            self.total += size
        return self.fixed + self.session + self.total <= self.budget

    async def fit(
        self,
        *,
        step: int,
        system: list[dict[str, Any]],
        session: list[dict[str, Any]],
        messages: list[dict[str, Any]],
        run_input: str,
        summary: str | None,
        covers: int,
        summaries: int,
        summarize: Summarizer | None,
    ) -> Fitted:
        """What to send instead, and the event saying so (see the module docstring)."""
        spec, budget = self.spec, self.budget
        every = [*session, *messages]
        sizes = [self.estimate(m) for m in session] + list(self.sizes[: len(messages)])
        shortened: list[str] = []
        for i, m in enumerate(every):  # 1. shorten large tool results by reference
            if m.get("role") == "tool" and sizes[i] > spec.max_tool_result:
                every[i] = m = self._shorten(m, spec.max_tool_result)
                sizes[i] = self.estimate(m)
                shortened.append(str(m.get("tool_call_id")))
        pinned = _input_index(messages, run_input)
        pinned = None if pinned is None else pinned + len(session)
        room = budget - self.fixed
        if sum(sizes) <= room:  # shortening was enough
            return self._fitted(step, system, every, sizes, shortened=shortened)

        # 2. the latest messages that fit (with room for a summary when one is declared)
        share = budget // SUMMARY_SHARE if spec.summarize_with is not None else 0
        keep_room = room - share - (sizes[pinned] if pinned is not None else 0)
        cut, used = len(every), 0
        while cut > 0 and used + sizes[cut - 1] <= keep_room:
            used += sizes[cut - 1]
            cut -= 1
        while cut < len(every) and every[cut].get("role") == "tool":
            cut += 1  # never begin with a result whose call was left out
        if cut == len(every):  # even the last message alone is too large: keep it, cut below
            cut = len(every) - 1
        if pinned is not None and pinned >= cut:
            pinned = None  # kept anyway
        older = [m for i, m in enumerate(every[:cut]) if i != pinned]

        # 3. the older messages: summarised (rolling forward) or dropped
        new_summary, usage, model = None, (0, 0, 0.0), ""
        if summarize is not None and older:
            text = summary if covers >= cut else None
            if text is None:
                fresh = [m for i, m in enumerate(every[covers:cut], start=covers) if i != pinned]
                text, tin, tout, cost, model = await summarize(fresh, summary, summaries)
                usage = (tin, tout, cost)
                new_summary = text = self._cap(text, share)
            summary_message = {
                "role": "system",
                "content": f"Summary of the earlier conversation: {text}",
            }
            head = [summary_message]
        else:
            head = []
        kept = head + ([every[pinned]] if pinned is not None else []) + every[cut:]
        kept_sizes = [self.estimate(m) for m in kept]

        # 4. anything still too large is cut, oldest kept first, the newest last
        truncated = 0
        i = 0
        while sum(kept_sizes) > room and i < len(kept):
            over = sum(kept_sizes) - room
            allowed = max(MESSAGE_TOKENS + 1, kept_sizes[i] - over)
            if allowed < kept_sizes[i]:
                kept[i] = self._shorten(kept[i], allowed - MESSAGE_TOKENS, note="cut to fit")
                kept_sizes[i] = self.estimate(kept[i])
                truncated += 1
            i += 1
        event = ContextFitted(
            step=step,
            budget=budget,
            tokens=self.fixed + sum(kept_sizes),
            sent=len(system) + len(kept),
            dropped=0 if head else len(older),
            summarized=cut - (1 if pinned is not None else 0) if head else 0,
            shortened=shortened,
            truncated=truncated,
            summary=new_summary,
            covers=cut if new_summary is not None else 0,
            model=model,
            input_tokens=usage[0],
            output_tokens=usage[1],
            cost=usage[2],
        )
        return Fitted(system + kept, event)

    def _fitted(
        self,
        step: int,
        system: list[dict[str, Any]],
        every: list[dict[str, Any]],
        sizes: list[int],
        *,
        shortened: list[str],
    ) -> Fitted:
        event = ContextFitted(
            step=step,
            budget=self.budget,
            tokens=self.fixed + sum(sizes),
            sent=len(system) + len(every),
            shortened=shortened,
        )
        return Fitted(system + every, event)

    def _shorten(self, message: dict[str, Any], tokens: int, note: str = "") -> dict[str, Any]:
        """`message` with its text cut to about `tokens` and a note of what was left out."""
        content = message.get("content")
        text = content if isinstance(content, str) else orjson.dumps(content).decode()
        keep = max(0, int((tokens - 40) * self.spec.chars_per_token))
        if message.get("role") == "tool":
            why = note or (
                f"shortened by Bosun: {len(text)} characters, the whole result is kept in the"
                f" run's journal (call {message.get('tool_call_id')})"
            )
        else:
            why = note or "shortened by Bosun"
        out = {k: v for k, v in message.items() if k != "media"}
        out["content"] = f"{text[:keep]}… [{why}]"
        return out

    def _cap(self, text: str, tokens: int) -> str:
        limit = max(0, int((tokens - MESSAGE_TOKENS - 12) * self.spec.chars_per_token))
        return text if len(text) <= limit else text[:limit] + "…"


def _input_index(messages: list[dict[str, Any]], run_input: str) -> int | None:
    """Where the run's own input is (kept whatever else is left out)."""
    for i, m in enumerate(messages):
        if m.get("role") == "user" and (
            m.get("content") == run_input or isinstance(m.get("content"), list)
        ):
            return i
    return None


def transcript(messages: list[dict[str, Any]], previous: str | None) -> str:
    """The text a summariser is given: the previous summary, then each message."""
    lines = [f"(summary so far) {previous}"] if previous else []
    for m in messages:
        chars = m.get("content")
        text = chars if isinstance(chars, str) else orjson.dumps(chars).decode() if chars else ""
        calls = ", ".join(
            f"{c['function']['name']}({c['function']['arguments']})"
            for c in m.get("tool_calls") or ()
        )
        lines.append(f"{m.get('role')}: {text}{' [calls ' + calls + ']' if calls else ''}")
    return "\n".join(lines)
