"""The `sim` provider answers like a real model, without one: configurable latency and token
counts, `tool_steps` calls to the agent's first tool, then a final answer. For load tests."""

from __future__ import annotations

import asyncio

from bosun.models.base import ModelRequest, ModelResponse, ToolCall, Usage
from bosun.spec.model import ModelSpec


class SimProvider:
    provider = "sim"

    def __init__(self, spec: ModelSpec):
        self.spec = spec
        self.model = spec.name

    async def complete(self, request: ModelRequest) -> ModelResponse:
        if self.spec.latency_ms:
            await asyncio.sleep(self.spec.latency_ms / 1000)
        usage = Usage(self.spec.input_tokens, self.spec.output_tokens)
        if request.turn < self.spec.tool_steps and request.tools:
            name = request.tools[0]["function"]["name"]
            call = ToolCall(
                id=f"sim_{request.turn}", name=name, arguments=f'{{"n": {request.turn}}}'
            )
            return ModelResponse(None, (call,), usage, self.model, "tool_calls")
        return ModelResponse(f"done after {request.turn} tool steps", (), usage, self.model, "stop")
