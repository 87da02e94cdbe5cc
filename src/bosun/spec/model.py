"""How an agent names its model. Secrets are never part of the spec: only the name of the
environment variable that holds the key, so the spec can be journaled as it is."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from bosun.spec.providers import check_provider, is_offline
from bosun.spec.where import SpecModel


class ScriptedToolCall(SpecModel):
    model_config = ConfigDict(extra="forbid")
    field_prefix = "tool_call"

    name: str
    arguments: dict[str, Any] | str = Field(default_factory=dict)
    id: str | None = None


class ScriptedTurn(SpecModel):
    """One declared model answer: text, tool calls, or both."""

    model_config = ConfigDict(extra="forbid")
    field_prefix = "turn"

    content: str | None = None
    tool_calls: list[ScriptedToolCall] = Field(default_factory=list)
    input_tokens: int | None = Field(default=None, ge=0)
    output_tokens: int | None = Field(default=None, ge=0)
    error: str | None = Field(default=None, description="fail this turn with this message")


class ScriptedScript(SpecModel):
    """Turns played when a message matches `when` (a regular expression, searched): one
    scripted agent answers different inputs differently. `on: first` (the default) reads
    the run's first user message and plays `turns` in order; `on: last` reads the latest
    user message or tool result and answers it with its one turn, so a conversation can
    loop (ask again) or end depending on what came back."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    field_prefix = "script"

    when: str
    on: Literal["first", "last"] = "first"
    turns: tuple[ScriptedTurn, ...] = ()

    @model_validator(mode="after")
    def _one_reaction(self) -> ScriptedScript:
        if self.on == "last" and len(self.turns) != 1:
            raise ValueError("a script `on: last` answers the latest message: give it one turn")
        return self

    @field_validator("when")
    @classmethod
    def _pattern(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"`when` is not a regular expression: {exc}") from None
        return value


class Pricing(SpecModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    field_prefix = "pricing"

    input_per_million: float = Field(ge=0)
    output_per_million: float = Field(ge=0)


class ModelSpec(SpecModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    field_prefix = "model"

    # A registered provider's name (`bosun.spec.providers`; `register_provider` adds one).
    provider: str = "openai"
    name: str = "gpt-4o-mini"
    # openai
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    timeout: float = Field(default=60.0, gt=0)
    max_retries: int = Field(default=3, ge=0)
    temperature: float | None = None
    # scripted
    turns: tuple[ScriptedTurn, ...] = ()
    # scripted, keyed by the input: the first script whose `when` matches plays; `turns`
    # when none does
    scripts: tuple[ScriptedScript, ...] = ()
    # sim
    latency_ms: float = Field(default=50.0, ge=0)
    input_tokens: int = Field(default=500, ge=0)
    output_tokens: int = Field(default=50, ge=0)
    tool_steps: int = Field(default=3, ge=0, description="sim: tool calls before answering")
    # The model's context window in tokens (None: `bosun.spec.context.DEFAULT_WINDOW`); no
    # request sends more (docs/memory.md, "Context").
    context_window: int | None = Field(default=None, gt=0)
    # cost
    pricing: Pricing | None = None
    # Tried in order when this model fails or its circuit breaker is open.
    fallbacks: tuple[ModelSpec, ...] = ()
    # anthropic, gemini: read the answer as server-sent events (the same answer is journaled)
    stream: bool = False
    # anthropic: the answer's token cap (the Messages API requires one)
    max_tokens: int = Field(default=4096, gt=0)
    # `low`/`medium`/`high` for models that take a reasoning effort (a route may choose it)
    reasoning_effort: Literal["low", "medium", "high"] | None = None

    @property
    def endpoint(self) -> str:
        """Names this endpoint for breakers and metrics (never includes a key)."""
        return f"{self.provider}:{self.base_url or 'default'}:{self.name}"

    @field_validator("provider")
    @classmethod
    def _registered(cls, value: str) -> str:
        """Checked when the spec is loaded, so a typo fails there, with a suggestion."""
        return check_provider(value)

    @model_validator(mode="before")
    @classmethod
    def _offline_names(cls, data: Any) -> Any:
        """`{provider: scripted}` is named "scripted", not the openai default: an offline
        provider (one that declares it needs no network) names its model after itself."""
        if isinstance(data, dict):
            provider = data.get("provider")
            if isinstance(provider, str) and is_offline(provider):
                data = {"name": provider, **data}
        return data
