"""Reviewers that veto: what a reviewer agent is given, and how its answer is read.

An agent declares who may review its calls (`Agent(reviewers=[qa])`, YAML
`reviewers: [agent:qa]`); a policy rule routes a proposed call to one of them
(`review: agent:qa`, with a CEL `when:`). The reviewer runs as a child run (the engine's
half is `bosun.engine.reviews`) whose input is the proposed call as JSON, and whose answer
is its verdict:

- a JSON object `{"verdict": "approve" | "veto" | "edit", "reason": "..."}`, or
- text starting with the verdict: `APPROVE`, `VETO: the refund is above the cap`,
  `EDIT: lower the amount to 100`.

Anything else is a veto (reviews fail closed: a reviewer that cannot be understood never
lets a call through), and so is a reviewer run that did not succeed.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from bosun.spec.vocab import ReviewVerdict

_WORDS = {
    "approve": ReviewVerdict.APPROVE,
    "approved": ReviewVerdict.APPROVE,
    "veto": ReviewVerdict.VETO,
    "vetoed": ReviewVerdict.VETO,
    "edit": ReviewVerdict.EDIT,
}
_LEADING = re.compile(r"\s*([A-Za-z]+)\s*[:.,\-]?\s*(.*)", re.S)


def review_input(agent: str, tool: str, arguments: dict[str, Any], rule: str, reason: str) -> str:
    """The reviewer run's input: the proposed call and why it is reviewed, as JSON."""
    return orjson.dumps(
        {
            "agent": agent,
            "tool": tool,
            "arguments": arguments,
            "rule": rule,
            "reason": reason,
            "answer_with": 'a JSON object {"verdict": "approve" | "veto" | "edit",'
            ' "reason": "..."}',
        },
        option=orjson.OPT_SORT_KEYS,
    ).decode()


# The pseudo-tool a final answer's review is journaled under (`ReviewRequested.tool`), and
# the prefix of its call id (`answer-<step>`): no real tool can be named so (`check_name`).
ANSWER = "answer"


def answer_input(agent: str, question: str, answer: str) -> str:
    """The reviewer run's input for a final answer: the run's input and the answer, as JSON."""
    return review_input(
        agent,
        ANSWER,
        {"input": question, "answer": answer},
        "review_answer",
        f"agent {agent} declares review_answer: its final answer is reviewed before it stands",
    )


def answer_feedback(verdict: str, reviewer: str, reason: str) -> str:
    """What the model is told when its final answer was vetoed or an edit was asked for
    (a user message, folded from `ReviewDecided`, so a resumed run sees the same)."""
    if verdict == ReviewVerdict.EDIT:
        return (
            f"Reviewer {reviewer} asks for an edit of your answer before it is given: {reason}."
            " Answer again with the change."
        )
    return f"Reviewer {reviewer} vetoed your answer: {reason}. Answer again."


def read_verdict(answer: str | None) -> tuple[ReviewVerdict, str]:
    """(verdict, reason) from a reviewer's answer; anything unreadable is a veto."""
    text = (answer or "").strip()
    try:
        data = orjson.loads(text) if text.startswith("{") else None
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict):
        verdict = _WORDS.get(str(data.get("verdict", "")).lower())
        if verdict is not None:
            return verdict, str(data.get("reason") or "")
    found = _LEADING.match(text)
    if found and found.group(1).lower() in _WORDS:
        return _WORDS[found.group(1).lower()], found.group(2).strip()
    shown = text if len(text) <= 200 else text[:199] + "…"
    return ReviewVerdict.VETO, f"the reviewer's answer is not a verdict ({shown!r}); vetoed"


__all__ = ["ANSWER", "answer_feedback", "answer_input", "read_verdict", "review_input"]
