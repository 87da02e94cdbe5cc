"""The `anthropic` and `gemini` providers against real HTTP servers on 127.0.0.1 that speak
each API's wire format (shapes from the SDKs' documentation: the Messages API's JSON and
its server-sent events; Gemini's `generateContent` and `streamGenerateContent?alt=sse`).
Through the official SDKs, never the internet."""

from __future__ import annotations

import json

import pytest
from model_wire import Reply, WireServer

from bosun import Agent, Runtime, tool
from bosun.errors import ModelError
from bosun.journal.events import ModelResponded, ToolFinished
from bosun.models.anthropic_provider import AnthropicProvider
from bosun.models.base import ModelRequest
from bosun.models.gemini_provider import GeminiProvider
from bosun.models.pricing import PriceTable
from bosun.spec.model import ModelSpec, Pricing

ADD = {
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


def claude(content: list[dict], stop: str = "end_turn", usage=(12, 7)) -> dict:
    return {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-test-1",
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {"input_tokens": usage[0], "output_tokens": usage[1]},
    }


def claude_stream(text: str, call: dict | None = None) -> list:
    start = claude([], usage=(20, 1))
    events = [("message_start", {"type": "message_start", "message": start})]
    events += [
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": text[:3]},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": text[3:]},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    ]
    if call:
        args = json.dumps(call["input"])
        events += [
            (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 1,
                    "content_block": {
                        "type": "tool_use",
                        "id": call["id"],
                        "name": call["name"],
                        "input": {},
                    },
                },
            ),
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 1,
                    "delta": {"type": "input_json_delta", "partial_json": args[:5]},
                },
            ),
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 1,
                    "delta": {"type": "input_json_delta", "partial_json": args[5:]},
                },
            ),
            ("content_block_stop", {"type": "content_block_stop", "index": 1}),
        ]
    stop = "tool_use" if call else "end_turn"
    events += [
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": 9},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return events


def gemini(parts: list[dict], usage=(11, 4), finish="STOP") -> dict:
    return {
        "candidates": [
            {"content": {"role": "model", "parts": parts}, "finishReason": finish, "index": 0}
        ],
        "usageMetadata": {
            "promptTokenCount": usage[0],
            "candidatesTokenCount": usage[1],
            "totalTokenCount": sum(usage),
        },
        "modelVersion": "gemini-test-1",
    }


def either(body: dict, camel: str):
    """A field by its JSON name or its proto name (the API accepts both; the SDK writes
    some nested fields by their proto names)."""
    snake = "".join("_" + c.lower() if c.isupper() else c for c in camel)
    return body[camel] if camel in body else body[snake]


def spec(provider: str, url: str, **kw) -> ModelSpec:
    return ModelSpec(
        provider=provider,
        name=f"{provider}-m",
        base_url=url,
        max_retries=1,
        timeout=5,
        api_key_env="BOSUN_TEST_KEY",
        **kw,
    )


CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "add 2 and 3"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "add", "arguments": '{"a":2,"b":3}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "c1", "content": "5"},
]


async def test_anthropic_translates_tools_and_results(monkeypatch):
    monkeypatch.setenv("BOSUN_TEST_KEY", "sk-ant-secret-1234")
    with WireServer([Reply(body=claude([{"type": "text", "text": "It is 5."}]))]) as srv:
        provider = AnthropicProvider(spec("anthropic", srv.url))
        answer = await provider.complete(ModelRequest(CONVERSATION, [ADD], turn=1))
        await provider.aclose()
    seen = srv.requests[0]
    assert seen.path == "/v1/messages"
    assert seen.headers["x-api-key"] == "sk-ant-secret-1234"
    assert seen.body["system"] == "Be brief."
    assert seen.body["tools"][0]["input_schema"]["required"] == ["a", "b"]
    assistant, result = seen.body["messages"][1], seen.body["messages"][2]
    assert assistant["content"][0] == {
        "type": "tool_use",
        "id": "c1",
        "name": "add",
        "input": {"a": 2, "b": 3},
    }
    assert result["content"][0]["type"] == "tool_result"
    assert result["content"][0]["tool_use_id"] == "c1"
    assert answer.content == "It is 5." and answer.finish_reason == "stop"
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (12, 7)
    assert answer.model == "claude-test-1"


async def test_anthropic_streams_a_tool_call():
    call = {"id": "toolu_9", "name": "add", "input": {"a": 40, "b": 2}}
    with WireServer([Reply(sse=claude_stream("Let me add.", call))]) as srv:
        provider = AnthropicProvider(spec("anthropic", srv.url, stream=True))
        answer = await provider.complete(ModelRequest([{"role": "user", "content": "x"}], [ADD], 0))
        await provider.aclose()
    assert srv.requests[0].body["stream"] is True
    assert answer.content == "Let me add."
    assert answer.tool_calls[0].id == "toolu_9"
    assert json.loads(answer.tool_calls[0].arguments) == {"a": 40, "b": 2}
    assert answer.finish_reason == "tool_calls"
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (20, 9)


async def test_anthropic_errors_are_classed_and_keys_redacted(monkeypatch):
    monkeypatch.setenv("BOSUN_TEST_KEY", "sk-ant-secret-1234")
    body = {
        "type": "error",
        "error": {"type": "authentication_error", "message": "bad key sk-ant-secret-1234"},
    }
    with WireServer([Reply(status=401, body=body)]) as srv:
        provider = AnthropicProvider(spec("anthropic", srv.url))
        with pytest.raises(ModelError) as err:
            await provider.complete(ModelRequest([{"role": "user", "content": "x"}], [], 0))
    assert err.value.error_type == "auth_error"
    assert "sk-ant-secret-1234" not in str(err.value) and "BOSUN_TEST_KEY" in str(err.value)
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}
    with WireServer([Reply(status=529, body=overloaded)]) as srv:
        provider = AnthropicProvider(spec("anthropic", srv.url))
        with pytest.raises(ModelError) as err:
            await provider.complete(ModelRequest([{"role": "user", "content": "x"}], [], 0))
    assert err.value.error_type == "server_error" and len(srv.requests) == 2  # one retry


async def test_gemini_translates_function_calls_and_responses(monkeypatch):
    monkeypatch.setenv("BOSUN_TEST_KEY", "gm-secret-5678")
    reply = gemini([{"functionCall": {"name": "add", "args": {"a": 1, "b": 2}}}])
    with WireServer([Reply(body=reply)]) as srv:
        provider = GeminiProvider(spec("gemini", srv.url, reasoning_effort="low"))
        answer = await provider.complete(ModelRequest(CONVERSATION, [ADD], turn=1))
        await provider.aclose()
    seen = srv.requests[0]
    assert seen.path.endswith("/models/gemini-m:generateContent")
    assert seen.headers["x-goog-api-key"] == "gm-secret-5678"
    assert seen.body["systemInstruction"]["parts"][0]["text"] == "Be brief."
    declared = seen.body["tools"][0]["functionDeclarations"][0]

    assert declared["name"] == "add" and either(declared, "parametersJsonSchema")["required"] == [
        "a",
        "b",
    ]
    assert either(seen.body["generationConfig"]["thinkingConfig"], "thinkingBudget") == 1024
    roles = [c["role"] for c in seen.body["contents"]]
    assert roles == ["user", "model", "user"]
    assert seen.body["contents"][1]["parts"][0]["functionCall"]["args"] == {"a": 2, "b": 3}
    response = seen.body["contents"][2]["parts"][0]["functionResponse"]
    assert response["name"] == "add" and response["response"] == {"result": "5"}
    assert answer.tool_calls[0].name == "add"
    assert json.loads(answer.tool_calls[0].arguments) == {"a": 1, "b": 2}
    assert answer.finish_reason == "tool_calls"
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (11, 4)
    assert answer.model == "gemini-test-1"


async def test_gemini_streams_text_chunks():
    chunks = [
        (None, gemini([{"text": "Hel"}], usage=(3, 1), finish=None)),
        (None, gemini([{"text": "lo"}], usage=(3, 2))),
    ]
    chunks[0][1]["candidates"][0].pop("finishReason")
    with WireServer([Reply(sse=chunks)]) as srv:
        provider = GeminiProvider(spec("gemini", srv.url, stream=True))
        answer = await provider.complete(ModelRequest([{"role": "user", "content": "x"}], [], 0))
        await provider.aclose()
    assert ":streamGenerateContent" in srv.requests[0].path
    assert answer.content == "Hello" and answer.finish_reason == "stop"
    assert answer.usage.output_tokens == 2


async def test_gemini_errors_are_classed():
    body = {"error": {"code": 400, "message": "Invalid argument", "status": "INVALID_ARGUMENT"}}
    with WireServer([Reply(status=400, body=body)]) as srv:
        provider = GeminiProvider(spec("gemini", srv.url))
        with pytest.raises(ModelError) as err:
            await provider.complete(ModelRequest([{"role": "user", "content": "x"}], [], 0))
    assert err.value.error_type == "bad_request" and "Invalid argument" in str(err.value)


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@pytest.mark.parametrize("provider", ["anthropic", "gemini"])
async def test_a_run_through_each_provider_journals_usage_and_price(provider, sqlite_path):
    if provider == "anthropic":
        replies = [
            Reply(
                body=claude(
                    [{"type": "tool_use", "id": "t1", "name": "add", "input": {"a": 2, "b": 3}}],
                    stop="tool_use",
                )
            ),
            Reply(body=claude([{"type": "text", "text": "5"}])),
        ]
    else:
        replies = [
            Reply(
                body=gemini(
                    [{"functionCall": {"id": "t1", "name": "add", "args": {"a": 2, "b": 3}}}]
                )
            ),
            Reply(body=gemini([{"text": "5"}])),
        ]
    with WireServer(replies) as srv:
        model = spec(
            provider, srv.url, pricing=Pricing(input_per_million=1e6, output_per_million=0)
        )
        agent = Agent(name="adder", model=model, tools=[add])
        async with Runtime(sqlite_path, prices=PriceTable()) as rt:
            run = await rt.run(agent, "add 2 and 3")
            events = [e for _, e in await rt.events(run.run_id)]
    assert run.status == "succeeded" and run.output == "5"
    finished = [e for e in events if isinstance(e, ToolFinished)]
    assert finished and finished[0].result == 5
    responded = [e for e in events if isinstance(e, ModelResponded)]
    assert [r.provider for r in responded] == [provider, provider]
    assert responded[0].input_tokens == (12 if provider == "anthropic" else 11)
    assert responded[0].cost == pytest.approx(responded[0].input_tokens)
