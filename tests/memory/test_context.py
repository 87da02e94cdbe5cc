"""Context that would overflow the model's window: the budget holds on every call, and
what was left out, summarised or shortened is journaled with the call."""

from __future__ import annotations

import orjson
from memory_helpers import Recorder
from memory_tools import fetch_report

from bosun import Agent, Runtime
from bosun.journal.events import ContextFitted, ModelResponded, ToolFinished
from bosun.memory.context import ContextFitter

WINDOW = 1500


def _tokens(messages, tools) -> int:
    """The test's own count, by the rule the docs state (3 characters a token, plus 4 per
    message): the request, as the provider got it."""
    fitter = ContextFitter.of(Agent(name="t", model="scripted").context_spec, WINDOW, [], [])
    return sum(fitter.estimate(m) for m in messages) + round(len(orjson.dumps(tools)) / 3)


def _looping(pages: int, **context) -> tuple[Agent, Recorder]:
    answers = [[("fetch_report", orjson.dumps({"page": i}).decode())] for i in range(pages)]
    model = Recorder([*answers, "done"])
    agent = Agent(
        name="reader",
        model={"provider": "scripted", "context_window": WINDOW},
        instructions="Read every page.",
        tools=[fetch_report],
        context={"reserve": 100, "max_tool_result": 300, **context},
    )
    return agent, model


async def test_a_growing_loop_never_sends_more_than_the_window(db_url):
    agent, model = _looping(8)
    async with Runtime(db_url) as rt:
        rt.register(agent, provider=model)
        result = await rt.run(agent, "summarise the report")
        events = [e for _, e in await rt.events(result.run_id)]
    tools = [t.schema() for t in agent.tools]
    assert result.status == "succeeded"
    assert all(_tokens(r, tools) <= WINDOW for r in model.requests)
    fitted = [e for e in events if isinstance(e, ContextFitted)]
    assert fitted and all(e.tokens <= e.budget <= WINDOW for e in fitted)
    assert fitted[-1].dropped > 0  # no summariser declared: older turns left out, and noted
    assert "c0_0" in fitted[0].shortened  # the first page was shortened by reference
    # ...and its whole value is still in the journal
    whole = next(e for e in events if isinstance(e, ToolFinished) and e.call_id == "c0_0")
    assert whole.result == fetch_report.fn(0)
    for request in model.requests:  # the run's own input is always sent
        assert {"role": "user", "content": "summarise the report"} in request
        assert request[0] == {"role": "system", "content": "Read every page."}
        assert request[1]["role"] != "tool"  # never a result without its call


async def test_a_context_that_fits_journals_nothing_more(sqlite_path):
    agent, model = _looping(1)
    async with Runtime(sqlite_path) as rt:
        rt.register(agent, provider=model)
        result = await rt.run(agent, "one page")
        events = [e for _, e in await rt.events(result.run_id)]
    assert not [e for e in events if isinstance(e, ContextFitted) and not e.shortened]
    assert not any(isinstance(e, ContextFitted) for e in events[:3])


async def test_older_turns_are_summarised_by_the_declared_model_and_counted(db_url):
    summaries = [
        {"content": f"summary {i}: pages read so far", "input_tokens": 50} for i in range(10)
    ]
    agent, model = _looping(8, summarize_with={"provider": "scripted", "turns": summaries})
    async with Runtime(db_url) as rt:
        rt.register(agent, provider=model)
        result = await rt.run(agent, "summarise the report")
        events = [e for _, e in await rt.events(result.run_id)]
    fitted = [e for e in events if isinstance(e, ContextFitted) and e.summary]
    assert fitted and fitted[0].summary == "summary 0: pages read so far"
    assert [e.summary for e in fitted] == [
        f"summary {i}: pages read so far" for i in range(len(fitted))
    ]
    last = model.requests[-1]
    assert last[1] == {
        "role": "system",
        "content": f"Summary of the earlier conversation: {fitted[-1].summary}",
    }
    answered = sum(e.input_tokens for e in events if isinstance(e, ModelResponded))
    assert result.input_tokens == answered + 50 * len(fitted)  # the summaries count too


async def test_the_summary_is_rebuilt_from_the_journal_not_asked_for_again(sqlite_path):
    from bosun.engine.state import rebuild

    summaries = [{"content": f"summary {i}"} for i in range(10)]
    agent, model = _looping(8, summarize_with={"provider": "scripted", "turns": summaries})
    async with Runtime(sqlite_path) as rt:
        rt.register(agent, provider=model)
        result = await rt.run(agent, "summarise the report")
        raw = await rt.events(result.run_id)
    state = rebuild(result.run_id, raw)
    made = [e for _, e in raw if isinstance(e, ContextFitted) and e.summary]
    assert state.context_summary == made[-1].summary and state.summaries == len(made)
    assert state.summary_covers == made[-1].covers > 0
