"""Scripted models keyed by the input (`scripts`): one offline agent answering different
messages differently, as the A2A TCK's agent does."""

from __future__ import annotations

import pytest

from bosun.errors import SpecError
from bosun.models.base import ModelRequest
from bosun.models.scripted import ScriptedProvider
from bosun.spec.model import ModelSpec


def provider(**spec) -> ScriptedProvider:
    return ScriptedProvider(ModelSpec(provider="scripted", **spec))


def ask(turn: int, *messages: tuple[str, str]) -> ModelRequest:
    return ModelRequest(
        messages=[{"role": "system", "content": "be brief"}]
        + [{"role": r, "content": c} for r, c in messages],
        tools=[],
        turn=turn,
    )


async def test_the_first_script_matching_the_first_user_message_plays_in_order():
    model = provider(
        scripts=[
            {"when": "^refund", "turns": [{"content": "refund 1"}, {"content": "refund 2"}]},
            {"when": "refund|ship", "turns": [{"content": "never: the first match wins"}]},
        ],
        turns=[{"content": "default"}],
    )
    assert (await model.complete(ask(0, ("user", "refund my order")))).content == "refund 1"
    later = ask(1, ("user", "refund my order"), ("tool", '{"ok":true}'))
    assert (await model.complete(later)).content == "refund 2"
    assert (await model.complete(ask(0, ("user", "hello")))).content == "default"


async def test_a_script_on_the_last_message_answers_what_came_back_each_time():
    model = provider(
        scripts=[
            {"when": '"id":"again', "on": "last", "turns": [{"content": "asking again"}]},
            {"when": '"id":"done', "on": "last", "turns": [{"content": "finished"}]},
        ]
    )
    first = ask(0, ("user", '{"id":"again-1"}'))
    assert (await model.complete(first)).content == "asking again"
    loop = ask(5, ("user", '{"id":"again-1"}'), ("tool", '{"id":"again-2"}'))
    assert (await model.complete(loop)).content == "asking again"
    end = ask(6, ("user", '{"id":"again-1"}'), ("tool", '{"id":"done-3"}'))
    assert (await model.complete(end)).content == "finished"


def test_a_bad_pattern_or_a_last_script_with_several_turns_is_refused_when_loaded():
    with pytest.raises(SpecError, match="regular expression"):
        ModelSpec(provider="scripted", scripts=[{"when": "(", "turns": []}])
    with pytest.raises(SpecError, match="one turn"):
        ModelSpec(
            provider="scripted",
            scripts=[{"when": "x", "on": "last", "turns": [{"content": "a"}, {"content": "b"}]}],
        )
