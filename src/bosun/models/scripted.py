"""The `scripted` provider plays declared model turns, for tests and the offline demo.

The turn played is the run's model-call index, so a resumed run continues the
script where it stopped, and the same script always produces the same run.
"""

from __future__ import annotations

import re

import orjson

from bosun.errors import ModelError
from bosun.models.base import ModelRequest, ModelResponse, ToolCall, Usage
from bosun.spec.model import ModelSpec, ScriptedTurn


def _estimate_tokens(text: str) -> int:
    return max(1, len(text) // 4)


class ScriptedProvider:
    provider = "scripted"

    def __init__(self, spec: ModelSpec):
        self.spec = spec
        self.model = spec.name

    def _turn(self, request: ModelRequest) -> tuple[tuple[ScriptedTurn, ...], int]:
        """The turns to play and which one: `turns` by the run's model-call index, unless
        a script matches (`ModelSpec.scripts`)."""
        if not self.spec.scripts:
            return self.spec.turns, request.turn
        said = [m for m in request.messages if m.get("role") in ("user", "tool")]
        first = next((m for m in said if m.get("role") == "user"), None)
        texts = {
            "first": str(first.get("content") or "") if first else "",
            "last": str(said[-1].get("content") or "") if said else "",
        }
        for script in self.spec.scripts:
            if re.search(script.when, texts[script.on]):
                return script.turns, 0 if script.on == "last" else request.turn
        return self.spec.turns, request.turn

    async def complete(self, request: ModelRequest) -> ModelResponse:
        turns, index = self._turn(request)
        if index >= len(turns):
            raise ModelError(
                f"scripted model has {len(turns)} turns and the run asked for turn "
                f"{request.turn + 1}: add turns to the script (the last should answer with content)",
                error_type="script_exhausted",
            )
        turn = turns[index]
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
