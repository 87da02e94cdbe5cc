"""The model provider interface: OpenAI chat messages in, one answer out.

Messages and tool schemas use the OpenAI chat-completions shapes because every
OpenAI-compatible server (vLLM, SGLang, Ollama, llama.cpp, hosted APIs) speaks
them; providers for other APIs translate at their edge.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # raw JSON text, exactly as the model wrote it (may be malformed)


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True, slots=True)
class ModelRequest:
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    turn: int  # 0-based index of this model call within the run (stable across resumes)
    run_id: str = ""
    # Reasoning effort a route chose for this call (`low`/`medium`/`high`), for models
    # that take one; None leaves the model's own setting.
    effort: str | None = None
    # What a route may choose by: the run's agent, tenant and tags (`routing/features.py`).
    context: Mapping[str, Any] | None = None
    # Fit the conversation to a smaller context budget (tokens), journaling what it left
    # out (`ContextFitted`): how a route applies the budget it chose (the engine's).
    fit: Callable[[int], Awaitable[list[dict[str, Any]]]] | None = None


@dataclass(frozen=True, slots=True)
class ModelResponse:
    content: str | None
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage = field(default_factory=Usage)
    model: str = ""
    finish_reason: str = "stop"
    route: Any = None  # a route's choice (`ModelRouted`), journaled before the answer
    pricing: Any = None  # the chosen candidate's declared `Pricing` (else the agent's)


class ModelProvider(Protocol):
    """Anything that answers a chat request. Raise `bosun.errors.ModelError` on failure."""

    provider: str  # e.g. "openai", "scripted", "sim"
    model: str

    async def complete(self, request: ModelRequest) -> ModelResponse: ...
