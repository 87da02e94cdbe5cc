"""A model that remembers what it was sent, for the memory tests (a real provider object,
registered with `Runtime.register(agent, provider=...)`)."""

from __future__ import annotations

from typing import Any

from bosun.models.base import ModelRequest, ModelResponse, ToolCall, Usage


class Recorder:
    """Answers each call from `answers` (text, or (tool, arguments) pairs) and keeps every
    request's messages; without answers, says how many messages it saw."""

    provider = "recorder"
    model = "recorder"

    def __init__(self, answers: list[Any] | None = None):
        self.answers = answers
        self.requests: list[list[dict[str, Any]]] = []

    async def complete(self, request: ModelRequest) -> ModelResponse:
        self.requests.append([dict(m) for m in request.messages])
        chars = sum(len(str(m.get("content") or "")) for m in request.messages)
        usage = Usage(input_tokens=max(1, chars // 4), output_tokens=5)
        if self.answers is None:
            return ModelResponse(content=f"saw {len(request.messages)}", usage=usage)
        answer = self.answers[request.turn]
        if isinstance(answer, str):
            return ModelResponse(content=answer, usage=usage)
        calls = tuple(
            ToolCall(id=f"c{request.turn}_{i}", name=name, arguments=args)
            for i, (name, args) in enumerate(answer)
        )
        return ModelResponse(content=None, tool_calls=calls, usage=usage)


def texts(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(m["role"], str(m.get("content"))) for m in messages if m["role"] != "system"]
