"""The `anthropic` provider: the Anthropic Messages API through the official SDK.

Messages are translated at this edge (`models/translate.py`); tool calls come back as
`tool_use` blocks and become Bosun `ToolCall`s with their arguments as JSON text.
`model.stream: true` uses the SDK's streaming helper (server-sent events) and keeps its
final message, so a long answer is not cut by a proxy's idle timeout; the journaled
answer is the same either way. Retries are the SDK's (timeouts, connection errors, 408,
409, 429, 5xx; `retry-after` honoured). The key is read from `model.api_key_env`
(default `ANTHROPIC_API_KEY` when the spec leaves the OpenAI default).
"""

from __future__ import annotations

import json
import os
from typing import Any

from bosun.errors import ModelError
from bosun.models import failures
from bosun.models.base import ModelRequest, ModelResponse, ToolCall, Usage
from bosun.models.translate import anthropic_tools, to_anthropic
from bosun.spec.model import ModelSpec

DEFAULT_KEY_ENV = "ANTHROPIC_API_KEY"
# Anthropic's stop reasons in the OpenAI words the journal uses.
FINISH = {"end_turn": "stop", "tool_use": "tool_calls", "max_tokens": "length"}


class AnthropicProvider:
    provider = "anthropic"

    def __init__(self, spec: ModelSpec):
        import anthropic  # the optional extra `bosun[anthropic]`

        self._sdk = anthropic
        self.spec = spec
        self.model = spec.name
        self.key_env = DEFAULT_KEY_ENV if spec.api_key_env == "OPENAI_API_KEY" else spec.api_key_env
        self._client: Any = None
        self._key = ""

    def _get_client(self) -> Any:
        if self._client is None:
            self._key = os.environ.get(self.key_env) or ""
            self._client = self._sdk.AsyncAnthropic(
                base_url=self.spec.base_url,
                api_key=self._key or "no-key-set",
                timeout=self.spec.timeout,
                max_retries=self.spec.max_retries,
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()

    async def complete(self, request: ModelRequest) -> ModelResponse:
        client = self._get_client()
        system, messages = to_anthropic(request.messages)
        kwargs: dict[str, Any] = {
            "model": self.spec.name,
            "messages": messages,
            "max_tokens": self.spec.max_tokens,
        }
        if system:
            kwargs["system"] = system
        if request.tools:
            kwargs["tools"] = anthropic_tools(request.tools)
        if self.spec.temperature is not None:
            kwargs["temperature"] = self.spec.temperature
        effort = request.effort or self.spec.reasoning_effort
        if effort and effort in THINKING:
            kwargs["thinking"] = {"type": "enabled", "budget_tokens": THINKING[effort]}
            kwargs["max_tokens"] = max(kwargs["max_tokens"], THINKING[effort] + 1024)
        try:
            if self.spec.stream:
                async with client.messages.stream(**kwargs) as stream:
                    message = await stream.get_final_message()
            else:
                message = await client.messages.create(**kwargs)
        except self._sdk.APIError as exc:
            raise self._error(exc) from None
        except ValueError as exc:
            raise failures.malformed(self._where(), "Messages", str(exc)) from None
        return self._response(message)

    def _response(self, message: Any) -> ModelResponse:
        blocks = getattr(message, "content", None)
        if not isinstance(blocks, list):
            raise failures.malformed(self._where(), "Messages", "the answer has no content")
        texts, calls = [], []
        for i, block in enumerate(blocks):
            kind = getattr(block, "type", None)
            if kind == "text":
                texts.append(block.text)
            elif kind == "tool_use":
                calls.append(
                    ToolCall(
                        id=getattr(block, "id", None) or f"call_{i}",
                        name=block.name,
                        arguments=json.dumps(getattr(block, "input", None) or {}),
                    )
                )
        usage = getattr(message, "usage", None)
        stop = getattr(message, "stop_reason", None) or ("tool_use" if calls else "end_turn")
        return ModelResponse(
            content="".join(texts) if texts else None,
            tool_calls=tuple(calls),
            usage=Usage(
                input_tokens=int(getattr(usage, "input_tokens", 0) or 0),
                output_tokens=int(getattr(usage, "output_tokens", 0) or 0),
            ),
            model=getattr(message, "model", None) or self.spec.name,
            finish_reason=FINISH.get(stop, str(stop)),
        )

    def _where(self) -> str:
        return f"model {self.spec.name!r} at {self.spec.base_url or 'the Anthropic API'}"

    def _error(self, exc: Any) -> ModelError:
        sdk, where, tries = self._sdk, self._where(), self.spec.max_retries + 1
        if isinstance(exc, sdk.APITimeoutError):
            return failures.timeout(where, self.spec.timeout, tries)
        if isinstance(exc, sdk.APIConnectionError):
            cause = failures.redact(str(exc.__cause__ or exc), self._key)
            return failures.connection(where, cause, tries)
        server = failures.redact(_server_message(exc), self._key)
        if isinstance(exc, sdk.APIStatusError):
            return failures.status(
                where,
                exc.status_code,
                server,
                tries=tries,
                key_env=self.key_env,
                key_set=bool(self._key),
            )
        return failures.malformed(where, "Messages", server)


# Reasoning effort in Anthropic's terms: extended thinking's token budget.
THINKING = {"low": 1024, "medium": 4096, "high": 16384}


def _server_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
    return str(getattr(exc, "message", exc))
