"""How an agent's context is fitted into its model's window, and what its memory is.

`context:` is optional: without it every run still fits its model's window (the model's
`context_window`, else `DEFAULT_WINDOW`), keeping the latest messages and dropping older
ones, each drop journaled. With it the budget, what is kept, the model that summarises
older turns and the size past which a tool result is shortened are declared.

`memory:` (`true`, or a block) offers the agent the `remember`, `recall` and `forget`
tools over long-term facts (docs/memory.md).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from bosun.spec.model import ModelSpec
from bosun.spec.where import SpecModel

DEFAULT_WINDOW = 128_000  # tokens, for a model that declares none


class ContextSpec(SpecModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    field_prefix = "context"

    # Tokens the request may hold; default: the model's window less `reserve`.
    budget: int | None = Field(default=None, gt=0)
    reserve: int = Field(default=1024, ge=0, description="tokens kept free for the answer")
    keep_messages: int = Field(default=6, ge=1, description="the latest messages always kept")
    # The model that summarises older turns (None: they are dropped, and the drop noted).
    summarize_with: ModelSpec | None = None
    # A tool result estimated past this many tokens is shortened, its whole value kept in
    # the journal and named by reference (`bosun show RUN --calls`, the calls API).
    max_tool_result: int = Field(default=2000, gt=0)
    # The estimate: characters per token (3 errs on the side of sending less).
    chars_per_token: float = Field(default=3.0, gt=0)


Scope = Literal["user", "agent", "tenant", "team"]


class MemorySpec(SpecModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    field_prefix = "memory"

    enabled: bool = True
    # Where `remember` writes and `recall` reads by default: the run's user (else the
    # tenant), the agent, the whole tenant, or the run tree's shared scratchpad (team).
    scope: Scope = "user"
    # Entity kind (`order.status`) -> the source system that wins when facts disagree.
    sources: dict[str, str] = Field(default_factory=dict)
    # Facts older than this many seconds are recalled as stale (not as current values).
    max_age: float | None = Field(default=None, gt=0)
    recall_limit: int = Field(default=5, ge=1, le=50)

    @model_validator(mode="before")
    @classmethod
    def _bool(cls, data: Any) -> Any:
        if isinstance(data, bool):
            return {"enabled": data}
        return data
