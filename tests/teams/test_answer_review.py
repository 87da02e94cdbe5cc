"""Reviewing the final answer, on both stores, with the scripted model: an agent declaring
`review_answer` succeeds only with an answer its reviewer approved; a veto or an edit
request goes back to the model, which answers again (reviewed again), bounded by limits.
The SIGKILL during an answer review is in tests/recovery/test_sigkill_reviews.py."""

from __future__ import annotations

import json

import pytest

from bosun import Agent, Limits, Runtime, SpecError
from bosun.govern.audit import verify
from bosun.journal.events import ReviewDecided, ReviewRequested, RunStarted, WaitRequested
from bosun.models.base import ModelRequest, ModelResponse, Usage
from bosun.models.registry import register_provider
from bosun.observe.reviews import reviewer_rates


class Checker:
    """A reviewer model that reads the answer it is given: model name `veto:tomorrow`
    answers `VETO: ...` for an answer mentioning "tomorrow" and `APPROVE` otherwise (a
    scripted reviewer's turns restart with each reviewer run, so it could not tell the
    second answer from the first)."""

    provider = "answer-checker"

    def __init__(self, spec):
        self.verb, _, self.word = spec.name.partition(":")
        self.model = spec.name

    async def complete(self, request: ModelRequest) -> ModelResponse:
        given = json.loads(request.messages[-1]["content"])["arguments"]["answer"]
        found = self.word in given
        text = f"{self.verb.upper()}: do not say {self.word!r}" if found else "APPROVE"
        return ModelResponse(content=text, tool_calls=(), usage=Usage(10, 5), model=self.model)


register_provider("answer-checker", Checker, offline=True)


def checker(rule: str) -> Agent:
    return Agent(name="qa", model={"provider": "answer-checker", "name": rule})


def scripted(*turns: dict) -> dict:
    return {"provider": "scripted", "turns": list(turns)}


def answer(text: str) -> dict:
    return {"content": text}


def qa(*verdicts: str) -> Agent:
    return Agent(
        name="qa",
        instructions="Check answers against the refund policy.",
        model=scripted(*(answer(v) for v in verdicts)),
    )


def support(reviewer: Agent, *answers: str, **kw) -> Agent:
    return Agent(
        name="support",
        model=scripted(*(answer(a) for a in answers)),
        reviewers=[reviewer],
        review_answer="agent:qa",
        **kw,
    )


def of(events, kind):
    return [e for _, e in events if isinstance(e, kind)]


async def test_an_approved_answer_ends_the_run_with_it(db_url):
    agent = support(qa("APPROVE"), "Your refund of 40 is on its way.")
    async with Runtime(db_url) as rt:
        result = await rt.run(agent, "refund order 1234")
        events = await rt.events(result.run_id)
        [reviewer] = await rt.store.list_runs(parent_id=result.run_id)
        reviewer_events = await rt.events(reviewer.id)

    assert result.status == "succeeded"
    assert result.output == "Your refund of 40 is on its way."
    assert reviewer.agent == "qa" and reviewer.status == "succeeded"
    [requested] = of(events, ReviewRequested)
    assert (requested.tool, requested.reviewer, requested.run_id) == ("answer", "qa", reviewer.id)
    [wait] = of(events, WaitRequested)
    assert wait.wait_kind == "child" and wait.key == reviewer.id  # a durable child wait
    [decided] = of(events, ReviewDecided)
    assert decided.verdict == "approve"
    # The reviewer was given the run's input and the answer.
    [started] = of(reviewer_events, RunStarted)
    given = json.loads(started.input)
    assert given["tool"] == "answer"
    assert given["arguments"] == {
        "input": "refund order 1234",
        "answer": "Your refund of 40 is on its way.",
    }


async def test_a_vetoed_answer_goes_back_to_the_model_which_answers_again(db_url):
    agent = support(checker("veto:tomorrow"), "Refunded by tomorrow.", "Your refund is on its way.")
    async with Runtime(db_url) as rt:
        result = await rt.run(agent, "refund order 1234")
        events = await rt.events(result.run_id)
        children = await rt.store.list_runs(parent_id=result.run_id)
        state = await rt.store.get_run(result.run_id)

    assert result.status == "succeeded" and result.output == "Your refund is on its way."
    assert [d.verdict for d in of(events, ReviewDecided)] == ["veto", "approve"]
    assert len(children) == 2  # the second answer was reviewed again
    assert state.steps == 2
    rates = {r.reviewer: (r.reviews, r.vetoed) for r in reviewer_rates(events)}
    assert rates == {"qa": (2, 1)}  # counted like reviews of calls


async def test_the_model_is_told_why_its_answer_was_vetoed(db_url):
    from bosun.engine.state import rebuild

    agent = support(checker("edit:soon"), "Refunded soon.", "Refunded 40.")
    async with Runtime(db_url) as rt:
        result = await rt.run(agent, "refund order 1234")
        state = rebuild(result.run_id, await rt.events(result.run_id))

    assert result.output == "Refunded 40."
    told = [m["content"] for m in state.messages if m["role"] == "user"][1]
    assert told == (
        "Reviewer qa asks for an edit of your answer before it is given: do not say 'soon'."
        " Answer again with the change."
    )


async def test_answer_vetoes_are_bounded_by_the_run_limits(db_url):
    # Four steps in the tree: two answers and their two reviews (a reviewer's steps count).
    agent = support(checker("veto:"), "a", "b", "c", limits=Limits(max_steps=4))
    async with Runtime(db_url) as rt:
        result = await rt.run(agent, "refund order 1234")
        events = await rt.events(result.run_id)

    assert result.status == "limit_exceeded"
    assert result.output is None  # a vetoed answer never stands
    assert [d.verdict for d in of(events, ReviewDecided)] == ["veto", "veto"]


async def test_a_failing_answer_reviewer_is_a_veto(db_url):
    broken = Agent(name="qa", model=scripted(), limits=Limits(max_steps=1))
    agent = support(broken, "Refunded.", limits=Limits(max_steps=2))
    async with Runtime(db_url) as rt:
        result = await rt.run(agent, "refund order 1234")
        events = await rt.events(result.run_id)

    assert result.status != "succeeded"
    [decided, *_] = of(events, ReviewDecided)
    assert decided.verdict == "veto" and "fails closed" in decided.reason


async def test_answer_reviews_are_audited(db_url):
    agent = support(checker("veto:Maybe"), "Maybe.", "Refunded 40.")
    async with Runtime(db_url) as rt:
        result = await rt.run(agent, "refund order 1234")
        records = [
            r.entry for r in await rt.store.audit_records() if r.entry.subject == result.run_id
        ]
        verified = await verify(rt.store)
    assert verified.ok, verified
    actions = [r.action for r in records]
    assert actions.count("review_requested") == 2 and actions.count("review_decided") == 2


def test_review_answer_names_one_of_the_reviewers():
    with pytest.raises(SpecError, match=r"review_answer.*not among the agent's reviewers"):
        Agent(name="support", model=scripted(), review_answer="agent:qa")
    given = Agent(name="support", model=scripted(), review_answer=qa("APPROVE"))
    assert [r.name for r in given.reviewers] == ["qa"] and given.review_answer == "qa"
    assert given.snapshot()["review_answer"] == "qa"
    assert Agent.from_snapshot(given.snapshot()).review_answer == "qa"


async def test_review_answer_in_yaml(tmp_path):
    from bosun.spec.loader import load_agent

    (tmp_path / "qa.yaml").write_text(
        'name: qa\nmodel: {provider: scripted, turns: [{content: "APPROVE"}]}\n'
    )
    (tmp_path / "answers.yaml").write_text(
        "name: answers\n"
        'model: {provider: scripted, turns: [{content: "Refunded 40."}]}\n'
        "reviewers: [agent:qa]\n"
        "review_answer: agent:qa\n"
    )
    agent = load_agent(str(tmp_path / "answers.yaml"))
    assert agent.review_answer == "qa"
    async with Runtime(str(tmp_path / "bosun.db")) as rt:
        result = await rt.run(agent, "when is my refund?")
        events = await rt.events(result.run_id)
    assert (result.status, result.output) == ("succeeded", "Refunded 40.")
    assert [(d.tool, d.verdict) for d in of(events, ReviewDecided)] == [("answer", "approve")]
