"""The offline providers (scripted, sim) and the price table: what tests and demos rely on."""

from __future__ import annotations

import json

import pytest

from bosun.errors import ModelError
from bosun.models.base import ModelRequest, Usage
from bosun.models.pricing import DEFAULT_PRICES, PriceTable
from bosun.models.registry import build_provider
from bosun.models.scripted import ScriptedProvider
from bosun.models.sim import SimProvider
from bosun.spec.model import ModelSpec, Pricing

TOOL = {
    "type": "function",
    "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}},
}


def request(turn: int, tools: list | None = None, text: str = "hello there") -> ModelRequest:
    return ModelRequest(messages=[{"role": "user", "content": text}], tools=tools or [], turn=turn)


def scripted(*turns: dict) -> ScriptedProvider:
    return ScriptedProvider(ModelSpec(provider="scripted", turns=turns))


# -- scripted --------------------------------------------------------------------------------


async def test_scripted_plays_the_turn_the_request_index_names():
    p = scripted({"content": "first"}, {"content": "second"}, {"content": "third"})
    assert (await p.complete(request(2))).content == "third"
    assert (await p.complete(request(0))).content == "first"
    assert (await p.complete(request(1))).content == "second"


async def test_scripted_names_itself_and_reports_stop_for_text():
    p = scripted({"content": "hi"})
    response = await p.complete(request(0))
    assert (p.provider, p.model, response.model) == ("scripted", "scripted", "scripted")
    assert response.finish_reason == "stop"
    assert response.tool_calls == ()


async def test_scripted_tool_calls_get_json_arguments_and_stable_ids():
    p = scripted(
        {
            "tool_calls": [
                {"name": "lookup", "arguments": {"order": 1234}},
                {"name": "lookup", "arguments": {"order": 9}, "id": "mine"},
            ]
        }
    )
    response = await p.complete(request(0))
    assert response.finish_reason == "tool_calls"
    assert [(c.id, c.name) for c in response.tool_calls] == [
        ("call_0_0", "lookup"),
        ("mine", "lookup"),
    ]
    assert json.loads(response.tool_calls[0].arguments) == {"order": 1234}
    again = await p.complete(request(0))
    assert again.tool_calls == response.tool_calls  # same script, same run


async def test_scripted_string_arguments_are_passed_raw_even_if_malformed():
    p = scripted({"tool_calls": [{"name": "lookup", "arguments": '{"order": '}]})
    response = await p.complete(request(0))
    assert response.tool_calls[0].arguments == '{"order": '


async def test_scripted_exhausted_script_says_how_many_turns_and_what_to_add():
    p = scripted({"content": "only one"})
    with pytest.raises(ModelError) as caught:
        await p.complete(request(1))
    message = str(caught.value)
    assert caught.value.error_type == "script_exhausted"
    assert "1 turns" in message and "turn 2" in message
    assert "add turns" in message


async def test_scripted_error_turn_fails_with_its_message():
    p = scripted({"content": "ok"}, {"error": "upstream exploded"})
    assert (await p.complete(request(0))).content == "ok"
    with pytest.raises(ModelError) as caught:
        await p.complete(request(1))
    assert str(caught.value) == "upstream exploded"
    assert caught.value.error_type == "scripted_error"


async def test_scripted_declared_token_counts_win_over_estimates():
    p = scripted({"content": "x", "input_tokens": 123, "output_tokens": 7})
    assert (await p.complete(request(0))).usage == Usage(123, 7)


async def test_scripted_estimates_tokens_from_text_length():
    p = scripted({"content": "a" * 40})
    usage = (await p.complete(request(0, text="b" * 400))).usage
    assert (usage.input_tokens, usage.output_tokens) == (100, 10)
    empty = await scripted({"content": ""}).complete(request(0, text=""))
    assert empty.usage.input_tokens >= 1 and empty.usage.output_tokens >= 1


# -- sim -------------------------------------------------------------------------------------


def sim(**spec) -> SimProvider:
    return SimProvider(ModelSpec(provider="sim", latency_ms=0, **spec))


async def test_sim_calls_the_first_tool_tool_steps_times_then_answers():
    p = sim(tool_steps=2)
    tools = [TOOL, {"type": "function", "function": {"name": "other", "parameters": {}}}]
    first, second, third = [await p.complete(request(t, tools)) for t in range(3)]
    for turn, response in enumerate((first, second)):
        [call] = response.tool_calls
        assert call.name == "lookup"
        assert call.id == f"sim_{turn}"
        assert json.loads(call.arguments) == {"n": turn}
        assert response.finish_reason == "tool_calls"
        assert response.content is None
    assert third.tool_calls == ()
    assert third.finish_reason == "stop"
    assert third.content == "done after 2 tool steps"


async def test_sim_answers_at_once_when_the_agent_has_no_tools():
    response = await sim(tool_steps=3).complete(request(0, tools=[]))
    assert response.tool_calls == ()
    assert response.content == "done after 0 tool steps"


async def test_sim_zero_tool_steps_answers_at_once():
    response = await sim(tool_steps=0).complete(request(0, [TOOL]))
    assert response.tool_calls == ()


async def test_sim_reports_its_configured_token_counts_every_turn():
    p = sim(input_tokens=700, output_tokens=33, tool_steps=1)
    for turn in range(2):
        response = await p.complete(request(turn, [TOOL]))
        assert response.usage == Usage(700, 33)
        assert response.model == "sim"


async def test_sim_defaults_are_realistic():
    spec = ModelSpec(provider="sim")
    assert (spec.name, spec.input_tokens, spec.output_tokens, spec.tool_steps) == (
        "sim",
        500,
        50,
        3,
    )
    assert spec.latency_ms > 0


# -- factory ---------------------------------------------------------------------------------


def test_factory_builds_the_provider_the_spec_names():
    assert build_provider(ModelSpec(provider="scripted")).provider == "scripted"
    assert build_provider(ModelSpec(provider="sim")).provider == "sim"
    openai = build_provider(ModelSpec(provider="openai", name="gpt-4o-mini"))
    assert (openai.provider, openai.model) == ("openai", "gpt-4o-mini")


# -- pricing ---------------------------------------------------------------------------------


def test_default_prices_cost_per_million_tokens():
    table = PriceTable()
    assert table.cost("gpt-4o-mini", Usage(1_000_000, 1_000_000)) == pytest.approx(0.75)
    assert table.cost("gpt-4o", Usage(2_000, 1_000)) == pytest.approx(0.015)
    assert set(DEFAULT_PRICES) >= {"gpt-4o", "gpt-4o-mini", "scripted", "sim"}


def test_offline_providers_have_real_looking_costs():
    assert PriceTable().cost("scripted", Usage(1000, 100)) > 0
    assert PriceTable().cost("sim", Usage(1000, 100)) > 0


def test_unknown_model_costs_zero():
    assert PriceTable().cost("my-local-llama", Usage(10_000, 10_000)) == 0.0


def test_zero_usage_costs_zero():
    assert PriceTable().cost("gpt-4o", Usage()) == 0.0


def test_per_agent_override_wins_over_the_table():
    override = Pricing(input_per_million=1.0, output_per_million=10.0)
    assert PriceTable().cost("gpt-4o", Usage(1000, 100), override) == pytest.approx(0.002)
    assert PriceTable().cost("unknown", Usage(1000, 100), override) == pytest.approx(0.002)


def test_runtime_table_adds_and_replaces_models_and_keeps_the_rest():
    table = PriceTable(
        {
            "my-local-llama": Pricing(input_per_million=0.0, output_per_million=0.0),
            "gpt-4o": Pricing(input_per_million=5.0, output_per_million=20.0),
            "custom": Pricing(input_per_million=3.0, output_per_million=6.0),
        }
    )
    assert table.cost("gpt-4o", Usage(1_000_000, 0)) == pytest.approx(5.0)
    assert table.cost("custom", Usage(0, 1_000_000)) == pytest.approx(6.0)
    assert table.cost("gpt-4o-mini", Usage(1_000_000, 0)) == pytest.approx(0.15)
    assert table.cost("my-local-llama", Usage(1000, 1000)) == 0.0
    assert PriceTable().cost("gpt-4o", Usage(1_000_000, 0)) == pytest.approx(2.5)  # not shared


def test_pricing_rejects_negative_prices():
    with pytest.raises(ValueError):
        Pricing(input_per_million=-1, output_per_million=0)


def test_dated_model_names_are_priced_like_their_family():
    from bosun.models.base import Usage
    from bosun.models.pricing import PriceTable

    table = PriceTable()
    usage = Usage(1_000_000, 0)
    assert table.cost("gpt-4o-mini-2024-07-18", usage) == table.cost("gpt-4o-mini", usage) > 0
    assert table.cost("gpt-4o-2024-08-06", usage) == table.cost("gpt-4o", usage)
