"""How an agent is published over A2A (`bosun serve`; docs/a2a.md).

Off by default in the one way that matters: an agent is never public. `public: true` lets
A2A clients without a Bosun API key call it (as the tenant `tenant`, with the operator
role only); the server honours it only when bound to loopback, unless started with
`--a2a-public-anywhere`. The TCK sends no credentials, so its agent says `public: true`.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import ConfigDict, Field

from bosun.spec.where import SpecModel


class A2AInput(StrEnum):
    """What the run's input is made of an A2A message."""

    TEXT = "text"  # the message's text parts, joined by blank lines
    ENVELOPE = "envelope"  # JSON: {"message_id", "text", "data": [...], "files": [...]}


class A2AAnswer(StrEnum):
    """How the run's final answer becomes the task's result."""

    TEXT = "text"  # the answer is the completed task's message (one text part)
    PARTS = "parts"  # a JSON answer may carry artifacts and a direct reply (docs/a2a.md)


class A2ASettings(SpecModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    field_prefix = "a2a"

    public: bool = Field(default=False, description="callable over A2A without an API key")
    tenant: str = Field(default="default", description="the tenant public calls run in")
    description: str | None = Field(default=None, description="the card's description")
    input: A2AInput = A2AInput.TEXT
    answer: A2AAnswer = A2AAnswer.TEXT
    tags: tuple[str, ...] = ()
