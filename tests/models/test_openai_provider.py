"""The `openai` provider against a real HTTP server on 127.0.0.1 speaking chat completions.

The server is a stdlib `ThreadingHTTPServer` in a background thread, programmed per test
with the replies it gives in order (the last one repeats). Error replies carry
`retry-after-ms: 1`, which the SDK honours instead of its 0.5 s+ exponential backoff
(`retry-after: 0` would not be: the SDK only honours delays > 0), so retries are quick.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from bosun import Agent, Runtime, tool
from bosun.errors import ModelError
from bosun.journal.events import ModelResponded, ToolFinished
from bosun.models.base import ModelRequest
from bosun.models.openai_provider import OpenAIProvider
from bosun.spec.model import ModelSpec

KEY_ENV = "BOSUN_TEST_OPENAI_KEY"
KEY = "sk-test-0123456789abcdef"
FAST_RETRY = {"retry-after-ms": "1"}

ADD_SCHEMA = {
    "type": "function",
    "function": {
        "name": "add",
        "description": "Add two integers.",
        "parameters": {
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"],
        },
    },
}


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict -> JSON; str -> sent as is
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class FakeOpenAI:
    """POST /v1/chat/completions answered from a list of `Reply`s; every request recorded."""

    def __init__(self) -> None:
        self.replies: list[Reply] = [Reply(body=answer("hello"))]
        self.requests: list[Seen] = []
        self.release = threading.Event()  # set at teardown so hanging handlers return
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                index = len(fake.requests)
                fake.requests.append(
                    Seen(
                        self.path, {k.lower(): v for k, v in self.headers.items()}, json.loads(raw)
                    )
                )
                if self.path != "/v1/chat/completions":
                    self._send(Reply(404, {"error": {"message": f"no route {self.path}"}}))
                    return
                reply = fake.replies[min(index, len(fake.replies) - 1)]
                if reply.delay and fake.release.wait(reply.delay):
                    return
                self._send(reply)

            def _send(self, reply: Reply) -> None:
                data = (
                    reply.body.encode()
                    if isinstance(reply.body, str)
                    else json.dumps(reply.body).encode()
                )
                self.send_response(reply.status)
                default = "text/html" if isinstance(reply.body, str) else "application/json"
                headers = {"content-type": default, **reply.headers, "content-length": len(data)}
                for name, value in headers.items():
                    self.send_header(name, str(value))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    def reply(self, *replies: Reply) -> None:
        self.replies = list(replies)


def answer(
    content: str | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
    *,
    usage: dict[str, int] | None = None,
    model: str = "test-model",
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if tool_calls else "stop",
            }
        ],
    }
    if usage is not None:
        body["usage"] = {**usage, "total_tokens": sum(usage.values())}
    return body


def function_call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def error(status: int, message: str, **headers: str) -> Reply:
    return Reply(status, {"error": {"message": message, "type": "x", "code": None}}, headers)


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    fake.thread.start()
    yield fake
    fake.release.set()
    fake.server.shutdown()
    fake.server.server_close()


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(KEY_ENV, KEY)
    return KEY


def provider(server: FakeOpenAI, **spec: Any) -> OpenAIProvider:
    settings = {
        "provider": "openai",
        "name": "test-model",
        "base_url": server.url,
        "api_key_env": KEY_ENV,
        "timeout": 5.0,
        "max_retries": 2,
        **spec,
    }
    return OpenAIProvider(ModelSpec(**settings))


def request(tools: list[dict[str, Any]] | None = None) -> ModelRequest:
    return ModelRequest(
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is 2+3?"},
        ],
        tools=tools or [],
        turn=0,
    )


async def complete(p: OpenAIProvider, req: ModelRequest | None = None):
    try:
        return await p.complete(req or request())
    finally:
        await p.aclose()


# -- answers ---------------------------------------------------------------------------------


async def test_text_answer_maps_content_usage_model_and_finish_reason(server, key):
    server.reply(
        Reply(body=answer("5", usage={"prompt_tokens": 21, "completion_tokens": 2}, model="tm-1"))
    )
    response = await complete(provider(server))
    assert response.content == "5"
    assert response.tool_calls == ()
    assert (response.usage.input_tokens, response.usage.output_tokens) == (21, 2)
    assert (response.model, response.finish_reason) == ("tm-1", "stop")


async def test_request_carries_model_messages_tools_and_the_key_from_the_named_env_var(server, key):
    await complete(provider(server, temperature=0.2), request(tools=[ADD_SCHEMA]))
    [seen] = server.requests
    assert seen.path == "/v1/chat/completions"
    assert seen.headers["authorization"] == f"Bearer {KEY}"
    assert seen.body["model"] == "test-model"
    assert seen.body["messages"] == request().messages
    assert seen.body["tools"] == [ADD_SCHEMA]
    assert seen.body["temperature"] == 0.2


async def test_no_tools_and_no_temperature_are_left_out_of_the_request(server, key):
    await complete(provider(server))
    body = server.requests[0].body
    assert "tools" not in body
    assert "temperature" not in body


async def test_missing_key_sends_a_placeholder_so_keyless_local_servers_work(server, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    response = await complete(provider(server))
    assert response.content == "hello"
    assert server.requests[0].headers["authorization"].startswith("Bearer ")


async def test_missing_usage_counts_zero_tokens(server, key):
    server.reply(Reply(body=answer("hi")))
    response = await complete(provider(server))
    assert (response.usage.input_tokens, response.usage.output_tokens) == (0, 0)


async def test_tool_calls_map_id_name_and_raw_arguments(server, key):
    server.reply(
        Reply(
            body=answer(
                None,
                [
                    function_call("call_a", "add", '{"a": 2, "b": 3}'),
                    function_call("call_b", "add", '{"a":1,"b":1}'),
                ],
                usage={"prompt_tokens": 40, "completion_tokens": 12},
            )
        )
    )
    response = await complete(provider(server), request(tools=[ADD_SCHEMA]))
    assert response.content is None
    assert [(c.id, c.name, c.arguments) for c in response.tool_calls] == [
        ("call_a", "add", '{"a": 2, "b": 3}'),
        ("call_b", "add", '{"a":1,"b":1}'),
    ]
    assert response.finish_reason == "tool_calls"


async def test_malformed_tool_arguments_pass_through_raw_without_raising(server, key):
    broken = '{"a": 2, "b": '
    server.reply(Reply(body=answer(None, [function_call("call_x", "add", broken)])))
    response = await complete(provider(server), request(tools=[ADD_SCHEMA]))
    assert response.tool_calls[0].arguments == broken


async def test_arguments_sent_as_an_object_by_lenient_servers_become_json_text(server, key):
    call = {"id": "c1", "type": "function", "function": {"name": "add", "arguments": {"a": 1}}}
    server.reply(Reply(body=answer(None, [call])))
    response = await complete(provider(server), request(tools=[ADD_SCHEMA]))
    assert json.loads(response.tool_calls[0].arguments) == {"a": 1}


# -- retries and failures --------------------------------------------------------------------


async def test_429_twice_then_success_is_retried_by_the_sdk(server, key):
    server.reply(
        error(429, "slow down", **FAST_RETRY),
        error(429, "slow down", **FAST_RETRY),
        Reply(body=answer("finally")),
    )
    started = time.monotonic()
    response = await complete(provider(server, max_retries=2))
    assert response.content == "finally"
    assert len(server.requests) == 3
    assert time.monotonic() - started < 2  # retry-after-ms honoured, not 0.5 s+ backoff
    # the SDK reuses one idempotency key across its retries
    assert len({r.headers.get("idempotency-key") for r in server.requests}) == 1


async def test_429_after_all_retries_is_rate_limited(server, key):
    server.reply(error(429, "quota", **FAST_RETRY))
    with pytest.raises(ModelError) as caught:
        await complete(provider(server, max_retries=1))
    assert caught.value.error_type == "rate_limited"
    assert caught.value.retryable
    assert len(server.requests) == 2


async def test_500_always_is_a_server_error_after_max_retries_plus_one_requests(server, key):
    server.reply(error(500, "boom inside", **FAST_RETRY))
    with pytest.raises(ModelError) as caught:
        await complete(provider(server, max_retries=2))
    assert caught.value.error_type == "server_error"
    assert caught.value.retryable
    assert "boom inside" in str(caught.value)
    assert len(server.requests) == 3


async def test_max_retries_zero_makes_exactly_one_request(server, key):
    server.reply(error(503, "unavailable", **FAST_RETRY))
    with pytest.raises(ModelError) as caught:
        await complete(provider(server, max_retries=0))
    assert caught.value.error_type == "server_error"
    assert len(server.requests) == 1


async def test_a_server_slower_than_the_timeout_is_a_timeout(server, key):
    server.reply(Reply(body=answer("too late"), delay=5))
    started = time.monotonic()
    with pytest.raises(ModelError) as caught:
        await complete(provider(server, timeout=0.5, max_retries=0))
    assert caught.value.error_type == "timeout"
    assert caught.value.retryable
    assert "0.5 s" in str(caught.value)
    assert time.monotonic() - started < 3


async def test_nothing_listening_is_a_connection_error(key):
    dead = FakeOpenAI()  # bound, then closed without serving: the port refuses connections
    dead.server.server_close()
    p = OpenAIProvider(
        ModelSpec(name="test-model", base_url=dead.url, api_key_env=KEY_ENV, max_retries=0)
    )
    with pytest.raises(ModelError) as caught:
        await complete(p)
    assert caught.value.error_type == "connection_error"
    assert dead.url in str(caught.value)


async def test_401_is_an_auth_error_naming_the_env_var_never_the_key(server, key):
    # Some servers echo the key they were given; it must not reach the journal.
    server.reply(error(401, f"Incorrect API key provided: {KEY}"))
    with pytest.raises(ModelError) as caught:
        await complete(provider(server))
    message = str(caught.value)
    assert caught.value.error_type == "auth_error"
    assert not caught.value.retryable
    assert KEY_ENV in message
    assert KEY not in message
    assert len(server.requests) == 1  # not retried


async def test_403_is_an_auth_error_too(server, key):
    server.reply(error(403, "project has no access to this model"))
    with pytest.raises(ModelError) as caught:
        await complete(provider(server))
    assert caught.value.error_type == "auth_error"
    assert "no access" in str(caught.value)


async def test_other_4xx_is_a_bad_request_with_the_servers_message(server, key):
    server.reply(error(400, "tools[0].function.name must match ^[a-zA-Z0-9_-]+$"))
    with pytest.raises(ModelError) as caught:
        await complete(provider(server))
    assert caught.value.error_type == "bad_request"
    assert not caught.value.retryable
    assert "must match" in str(caught.value)
    assert len(server.requests) == 1


async def test_404_model_not_found_is_a_bad_request(server, key):
    server.reply(error(404, "The model `test-model` does not exist"))
    with pytest.raises(ModelError) as caught:
        await complete(provider(server))
    assert caught.value.error_type == "bad_request"
    assert "does not exist" in str(caught.value)


@pytest.mark.parametrize(
    "body",
    [
        {"id": "x", "object": "chat.completion", "model": "m", "choices": []},
        {"id": "x", "object": "chat.completion", "model": "m"},
        {"error": None},
        "<html>this is not an API</html>",
    ],
    ids=["empty-choices", "no-choices", "not-a-completion", "html"],
)
async def test_an_answer_without_choices_is_a_malformed_response(server, key, body):
    server.reply(Reply(body=body))
    with pytest.raises(ModelError) as caught:
        await complete(provider(server))
    assert caught.value.error_type == "malformed_response"
    assert "base_url" in str(caught.value)


async def test_truncated_json_is_a_malformed_response(server, key):
    server.reply(Reply(body='{"choices": [', headers={"content-type": "application/json"}))
    with pytest.raises(ModelError) as caught:
        await complete(provider(server))
    assert caught.value.error_type == "malformed_response"


async def test_the_client_is_created_once_per_provider(server, key):
    p = provider(server)
    try:
        await p.complete(request())
        first = p._client
        await p.complete(request())
        assert p._client is first
    finally:
        await p.aclose()
    assert len(server.requests) == 2


# -- end to end: an agent run through the runtime --------------------------------------------


@tool(effect="read", idempotent=True)
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


async def test_agent_run_calls_tool_and_journals_usage_and_cost(server, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    server.reply(
        Reply(
            body=answer(
                None,
                [function_call("call_1", "add", '{"a": 2, "b": 3}')],
                usage={"prompt_tokens": 1000, "completion_tokens": 100},
            )
        ),
        Reply(body=answer("2+3 is 5", usage={"prompt_tokens": 2000, "completion_tokens": 10})),
    )
    agent = Agent(
        name="adder",
        instructions="Use the add tool.",
        model={
            "provider": "openai",
            "name": "test-model",
            "base_url": server.url,
            "max_retries": 0,
            "pricing": {"input_per_million": 1.0, "output_per_million": 10.0},
        },
        tools=[add],
    )
    async with Runtime(str(tmp_path / "b.db")) as rt:
        result = await rt.run(agent, "What is 2+3?")
        events = await rt.events(result.run_id)

    assert (result.status, result.output, result.tool_calls) == ("succeeded", "2+3 is 5", 1)
    [finished] = [e for _, e in events if isinstance(e, ToolFinished)]
    assert finished.result == 5

    first, second = server.requests
    assert first.headers["authorization"] == f"Bearer {KEY}"
    assert first.body["model"] == "test-model"
    assert first.body["messages"] == [
        {"role": "system", "content": "Use the add tool."},
        {"role": "user", "content": "What is 2+3?"},
    ]
    assert [t["function"]["name"] for t in first.body["tools"]] == ["add"]
    assert first.body["tools"][0]["type"] == "function"
    assert set(first.body["tools"][0]["function"]["parameters"]["properties"]) == {"a", "b"}

    assistant, tool_result = second.body["messages"][2:4]
    assert assistant["role"] == "assistant"
    assert assistant["tool_calls"] == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "add", "arguments": '{"a": 2, "b": 3}'},
        }
    ]
    assert tool_result["role"] == "tool"
    assert tool_result["tool_call_id"] == "call_1"
    assert json.loads(tool_result["content"]) == 5

    responded = [e for _, e in events if isinstance(e, ModelResponded)]
    assert [(e.input_tokens, e.output_tokens) for e in responded] == [(1000, 100), (2000, 10)]
    # $1 / M input, $10 / M output
    assert [e.cost for e in responded] == pytest.approx([0.002, 0.0021])
    assert (result.input_tokens, result.output_tokens) == (3000, 110)
    assert result.cost == pytest.approx(0.0041)
