"""The `scripted` provider plays declared model turns, for tests and the offline demo.

The turn played is the run's model-call index, so a resumed run continues the
script where it stopped, and the same script always produces the same run.
"""

from __future__ import annotations

import re

import orjson

from bosun.errors import ModelError
from bosun.models.base import ModelRequest, ModelResponse, ToolCall, Usage
from bosun.spec.model import ModelSpec


def _estimate_tokens(text: str) -> int:
    return max(1, len(text) // 4)


class ScriptedProvider:
    provider = "scripted"

    def __init__(self, spec: ModelSpec):
        self.spec = spec
        self.model = spec.name

    def _turns(self, request: ModelRequest):
        if not self.spec.scripts:
            return self.spec.turns
        first = next((m for m in request.messages if m.get("role") == "user"), None)
        text = str(first.get("content") or "") if first else ""
        for script in self.spec.scripts:
            if re.search(script.when, text):
                return script.turns
        return self.spec.turns

    async def complete(self, request: ModelRequest) -> ModelResponse:
        turns = self._turns(request)
        if request.turn >= len(turns):
            raise ModelError(
                f"scripted model has {len(turns)} turns and the run asked for turn "
                f"{request.turn + 1}: add turns to the script (the last should answer with content)",
                error_type="script_exhausted",
            )
        turn = turns[request.turn]
        if turn.error:
            raise ModelError(turn.error, error_type="scripted_error")
        calls = tuple(
            ToolCall(
                id=c.id or f"call_{request.turn}_{i}",
                name=c.name,
                arguments=c.arguments
                if isinstance(c.arguments, str)
                else orjson.dumps(c.arguments).decode(),
            )
            for i, c in enumerate(turn.tool_calls)
        )
        prompt_chars = sum(len(str(m.get("content") or "")) for m in request.messages)
        output_chars = len(turn.content or "") + sum(len(c.arguments) + len(c.name) for c in calls)
        usage = Usage(
            input_tokens=turn.input_tokens
            if turn.input_tokens is not None
            else max(1, prompt_chars // 4),
            output_tokens=turn.output_tokens
            if turn.output_tokens is not None
            else _estimate_tokens("x" * output_chars),
        )
        return ModelResponse(
            content=turn.content,
            tool_calls=calls,
            usage=usage,
            model=self.model,
            finish_reason="tool_calls" if calls else "stop",
        )
