"""The `openai` provider: any OpenAI-compatible chat-completions endpoint.

Hosted OpenAI, vLLM, SGLang, Ollama, llama.cpp server: one setting away (`base_url`).
Retries are the official SDK's: it retries timeouts, connection errors, 408, 409, 429
and 5xx up to `max_retries` times with exponential backoff (0.5 s doubling to 8 s,
minus up to 25 % jitter), and honours a server's `retry-after-ms` / `retry-after`
header up to 2 minutes. Whatever still fails becomes a `ModelError` with a class the
router and the journal can act on. The API key is read from the environment variable
the spec names and never appears in a message.
"""

from __future__ import annotations

import json
import os
from typing import Any

import openai

from bosun.errors import ModelError
from bosun.models.base import ModelRequest, ModelResponse, ToolCall, Usage
from bosun.spec.model import ModelSpec

# Local servers (vLLM, Ollama, llama.cpp) accept any key, but the SDK insists on one.
NO_KEY = "no-key-set"


class OpenAIProvider:
    provider = "openai"

    def __init__(self, spec: ModelSpec):
        self.spec = spec
        self.model = spec.name
        self._client: openai.AsyncOpenAI | None = None
        self._key = ""

    def _get_client(self) -> openai.AsyncOpenAI:
        if self._client is None:
            self._key = os.environ.get(self.spec.api_key_env) or ""
            self._client = openai.AsyncOpenAI(
                base_url=self.spec.base_url,
                api_key=self._key or NO_KEY,
                timeout=self.spec.timeout,
                max_retries=self.spec.max_retries,
            )
        return self._client

    async def aclose(self) -> None:
        """Close the HTTP connection pool (a later `complete` opens a new one)."""
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()

    async def complete(self, request: ModelRequest) -> ModelResponse:
        client = self._get_client()
        kwargs: dict[str, Any] = {"model": self.spec.name, "messages": request.messages}
        if request.tools:
            kwargs["tools"] = request.tools
        if self.spec.temperature is not None:
            kwargs["temperature"] = self.spec.temperature
        if effort := request.effort or self.spec.reasoning_effort:
            kwargs["reasoning_effort"] = effort
        try:
            completion = await client.chat.completions.create(**kwargs)
        except openai.APIError as exc:
            raise self._error(exc) from None
        except ValueError as exc:  # a body that is not JSON at all
            raise self._malformed(f"the body is not JSON ({exc})") from None
        return self._response(completion)

    # -- answers -------------------------------------------------------------------------

    def _response(self, completion: Any) -> ModelResponse:
        choices = getattr(completion, "choices", None)
        if not isinstance(choices, list) or not choices:
            raise self._malformed("the answer has no choices")
        choice = choices[0]
        message = getattr(choice, "message", None)
        if message is None:
            raise self._malformed("the first choice has no message")
        calls = []
        for i, raw in enumerate(getattr(message, "tool_calls", None) or ()):
            function = getattr(raw, "function", None)
            name = getattr(function, "name", None)
            if not isinstance(name, str) or not name:
                raise self._malformed(f"tool call {i} has no function name")
            arguments = getattr(function, "arguments", None)
            if arguments is None:
                arguments = ""
            elif not isinstance(arguments, str):  # some servers send an object, not a string
                arguments = json.dumps(arguments)
            calls.append(
                ToolCall(id=getattr(raw, "id", None) or f"call_{i}", name=name, arguments=arguments)
            )
        content = getattr(message, "content", None)
        usage = getattr(completion, "usage", None)
        finish = getattr(choice, "finish_reason", None) or ("tool_calls" if calls else "stop")
        return ModelResponse(
            content=content if isinstance(content, str) else None,
            tool_calls=tuple(calls),
            usage=Usage(
                input_tokens=_tokens(getattr(usage, "prompt_tokens", 0)),
                output_tokens=_tokens(getattr(usage, "completion_tokens", 0)),
            ),
            model=getattr(completion, "model", None) or self.spec.name,
            finish_reason=str(finish),
        )

    # -- failures ------------------------------------------------------------------------

    def _where(self) -> str:
        return f"model {self.spec.name!r} at {self.spec.base_url or 'the OpenAI API'}"

    def _malformed(self, what: str) -> ModelError:
        return ModelError(
            f"{self._where()} sent a malformed chat-completions answer: {what}; "
            "check that base_url points at an OpenAI-compatible /v1 endpoint",
            error_type="malformed_response",
        )

    def _error(self, exc: openai.APIError) -> ModelError:
        where, tries = self._where(), self.spec.max_retries + 1
        server = self._redact(_server_message(exc))
        if isinstance(exc, openai.APITimeoutError):
            return ModelError(
                f"{where} did not answer within {self.spec.timeout:g} s ({tries} attempts); "
                "raise model.timeout or check the server",
                error_type="timeout",
                retryable=True,
            )
        if isinstance(exc, openai.APIConnectionError):
            cause = self._redact(str(exc.__cause__ or exc))
            return ModelError(
                f"could not connect to {where} ({tries} attempts): {cause}; "
                "check base_url and that the server is running",
                error_type="connection_error",
                retryable=True,
            )
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            if status in (401, 403):
                key_state = "is set" if self._key else "is not set"
                return ModelError(
                    f"{where} refused the API key (HTTP {status}: {server}); the key is read "
                    f"from the environment variable {self.spec.api_key_env}, which {key_state}: "
                    f"set {self.spec.api_key_env} to a valid key (or point model.api_key_env "
                    "at the variable that holds it)",
                    error_type="auth_error",
                )
            if status == 429:
                return ModelError(
                    f"{where} is rate limiting us (HTTP 429 after {tries} attempts): {server}; "
                    "lower the load or raise model.max_retries",
                    error_type="rate_limited",
                    retryable=True,
                )
            if status >= 500:
                return ModelError(
                    f"{where} failed with HTTP {status} ({tries} attempts): {server}",
                    error_type="server_error",
                    retryable=True,
                )
            return ModelError(
                f"{where} rejected the request (HTTP {status}): {server}",
                error_type="bad_request",
            )
        if isinstance(exc, openai.APIResponseValidationError):
            return self._malformed(server)
        return ModelError(f"{where} failed: {server}", error_type="model_error")

    def _redact(self, text: str) -> str:
        if self._key and len(self._key) >= 4:
            text = text.replace(self._key, "***")
        return text


def _server_message(exc: openai.APIError) -> str:
    """The server's own explanation: `error.message` of the JSON body, else the raw text."""
    body = exc.body
    if isinstance(body, dict):
        message = body.get("message")
        if isinstance(body.get("error"), dict):
            message = body["error"].get("message") or message
        if message:
            return str(message)
    if isinstance(body, str) and body.strip():
        return body.strip()[:500]
    return exc.message


def _tokens(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0
