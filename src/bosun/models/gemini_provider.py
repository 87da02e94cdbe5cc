"""The `gemini` provider: the Gemini API through the official `google-genai` SDK.

Messages are translated at this edge (`models/translate.py`); `function_call` parts come
back as Bosun `ToolCall`s (the call's id when the API gives one, else one made from the
turn). `model.stream: true` reads `streamGenerateContent` (server-sent events) and joins
the chunks; the journaled answer is the same either way. Retries are the SDK's
(`HttpRetryOptions`: 408, 429 and 5xx with exponential backoff). The key is read from
`model.api_key_env` (default `GEMINI_API_KEY` when the spec leaves the OpenAI default).
"""

from __future__ import annotations

import json
import os
from typing import Any

import httpx

from bosun.errors import ModelError
from bosun.models import failures
from bosun.models.base import ModelRequest, ModelResponse, ToolCall, Usage
from bosun.models.translate import gemini_tools, to_gemini
from bosun.spec.model import ModelSpec

DEFAULT_KEY_ENV = "GEMINI_API_KEY"
FINISH = {"STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter"}
# Reasoning effort in Gemini's terms: the thinking budget in tokens.
THINKING = {"low": 1024, "medium": 4096, "high": 16384}


class GeminiProvider:
    provider = "gemini"

    def __init__(self, spec: ModelSpec):
        from google import genai  # the optional extra `bosun[gemini]`
        from google.genai import types

        self._genai, self._types = genai, types
        self.spec = spec
        self.model = spec.name
        self.key_env = DEFAULT_KEY_ENV if spec.api_key_env == "OPENAI_API_KEY" else spec.api_key_env
        self._client: Any = None
        self._key = ""

    def _get_client(self) -> Any:
        if self._client is None:
            types = self._types
            self._key = os.environ.get(self.key_env) or ""
            options = types.HttpOptions(
                base_url=self.spec.base_url,
                timeout=int(self.spec.timeout * 1000),  # milliseconds
                retry_options=types.HttpRetryOptions(
                    attempts=self.spec.max_retries + 1, initial_delay=0.05, max_delay=8.0
                ),
            )
            self._client = self._genai.Client(
                api_key=self._key or "no-key-set", http_options=options
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aio.aclose()

    async def complete(self, request: ModelRequest) -> ModelResponse:
        client, types = self._get_client(), self._types
        system, contents = to_gemini(request.messages)
        config: dict[str, Any] = {"automatic_function_calling": {"disable": True}}
        if system:
            config["system_instruction"] = system
        if request.tools:
            config["tools"] = gemini_tools(request.tools)
        if self.spec.temperature is not None:
            config["temperature"] = self.spec.temperature
        effort = request.effort or self.spec.reasoning_effort
        if effort in THINKING:
            config["thinking_config"] = {"thinking_budget": THINKING[effort]}
        kwargs = {
            "model": self.spec.name,
            # Typed, so the SDK writes the API's camelCase names (plain dicts go as they are).
            "contents": [types.Content.model_validate(c) for c in contents],
            "config": types.GenerateContentConfig.model_validate(config),
        }
        try:
            if self.spec.stream:
                chunks = [
                    c async for c in await client.aio.models.generate_content_stream(**kwargs)
                ]
            else:
                chunks = [await client.aio.models.generate_content(**kwargs)]
        except self._genai.errors.APIError as exc:
            raise self._status(exc) from None
        except httpx.TimeoutException:
            raise failures.timeout(
                self._where(), self.spec.timeout, self.spec.max_retries + 1
            ) from None
        except httpx.TransportError as exc:
            cause = failures.redact(str(exc), self._key)
            raise failures.connection(self._where(), cause, self.spec.max_retries + 1) from None
        except ValueError as exc:
            raise failures.malformed(self._where(), "Gemini", str(exc)) from None
        return self._response(chunks, request.turn)

    def _response(self, chunks: list[Any], turn: int) -> ModelResponse:
        texts: list[str] = []
        calls: list[ToolCall] = []
        finish, usage, model = None, None, None
        for chunk in chunks:
            usage = getattr(chunk, "usage_metadata", None) or usage
            model = getattr(chunk, "model_version", None) or model
            for candidate in (getattr(chunk, "candidates", None) or ())[:1]:
                finish = getattr(candidate, "finish_reason", None) or finish
                content = getattr(candidate, "content", None)
                for part in getattr(content, "parts", None) or ():
                    if getattr(part, "thought", None):
                        continue  # the model's thinking summary is not its answer
                    if (call := getattr(part, "function_call", None)) is not None:
                        calls.append(
                            ToolCall(
                                id=call.id or f"call_{turn}_{len(calls)}",
                                name=call.name or "",
                                arguments=json.dumps(call.args or {}),
                            )
                        )
                    elif part.text:
                        texts.append(part.text)
        if not chunks or (not texts and not calls and finish is None):
            raise failures.malformed(self._where(), "Gemini", "the answer has no candidates")
        reason = getattr(finish, "value", finish) or "STOP"
        return ModelResponse(
            content="".join(texts) if texts else None,
            tool_calls=tuple(calls),
            usage=Usage(
                input_tokens=int(getattr(usage, "prompt_token_count", 0) or 0),
                output_tokens=int(getattr(usage, "candidates_token_count", 0) or 0)
                + int(getattr(usage, "thoughts_token_count", 0) or 0),
            ),
            model=model or self.spec.name,
            finish_reason="tool_calls" if calls else FINISH.get(str(reason), str(reason).lower()),
        )

    def _where(self) -> str:
        return f"model {self.spec.name!r} at {self.spec.base_url or 'the Gemini API'}"

    def _status(self, exc: Any) -> ModelError:
        server = failures.redact(str(getattr(exc, "message", None) or exc), self._key)
        return failures.status(
            self._where(),
            int(getattr(exc, "code", 0) or 0),
            server,
            tries=self.spec.max_retries + 1,
            key_env=self.key_env,
            key_set=bool(self._key),
        )
