"""Reviewers that veto, on both stores, with the scripted model: a policy rule routes a
proposed call to a reviewer agent (a child run) before governance executes it; the reviewer
approves (the call runs), vetoes with a reason (not executed; the proposer's model sees it,
as with a denial) or asks for an edit (the proposer re-proposes); reviews are journaled,
audited and counted. The SIGKILL during a review is in tests/recovery/test_sigkill_reviews.py
(it needs the crash kit's worker subprocesses)."""

from __future__ import annotations

import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bosun import Agent, Runtime, SpecError, tool
from bosun.govern.audit import verify
from bosun.journal.events import (
    PolicyDecided,
    ReviewDecided,
    ReviewRequested,
    RunStarted,
    ToolFailed,
    ToolFinished,
    WaitRequested,
)
from bosun.observe.feed import Observer
from bosun.observe.metrics import Metrics
from bosun.observe.reviews import reviewer_rates

REFUNDS: list[float] = []


@tool(effect="irreversible")
def issue_refund(order: str, amount: float) -> dict:
    """Refund an order. Cannot be undone."""
    REFUNDS.append(amount)
    return {"refunded": amount, "order": order}


@pytest.fixture(autouse=True)
def clear():
    REFUNDS.clear()


POLICY = {
    "name": "refunds-cap",
    "rules": [
        {
            "name": "refund-above-cap",
            "tools": ["issue_refund"],
            "when": "args.amount > 100.0",
            "review": "agent:qa",
            "reason": "refunds above 100 need a QA review",
        }
    ],
}


def scripted(*turns: dict) -> dict:
    return {"provider": "scripted", "turns": list(turns)}


def refund(amount: float) -> dict:
    return {
        "tool_calls": [{"name": "issue_refund", "arguments": {"order": "1234", "amount": amount}}]
    }


def of(events, kind, **match):
    return [
        e
        for _, e in events
        if isinstance(e, kind) and all(getattr(e, k) == v for k, v in match.items())
    ]


def qa(answer: str) -> Agent:
    return Agent(
        name="qa",
        instructions="Review refunds. The cap is 100.",
        model=scripted({"content": answer}),
    )


def proposer(reviewer: Agent, *turns: dict) -> Agent:
    return Agent(
        name="refunds",
        model=scripted(*(turns or (refund(249.0), {"content": "done"}))),
        tools=[issue_refund],
        reviewers=[reviewer],
        policy=POLICY,
    )


async def run_with_metrics(db_url: str, agent: Agent, text: str):
    async with Runtime(db_url) as rt:
        metrics = Metrics(rt.store)
        observer = await Observer(rt.store, [metrics]).attach(rt)
        result = await rt.run(agent, text)
        await observer.flush()
        events = await rt.events(result.run_id)
        children = await rt.store.list_runs(parent_id=result.run_id)
        await observer.close()
    counts = {}
    for family in text_string_to_metric_families((await metrics.render()).decode()):
        for sample in family.samples:
            if sample.name == "bosun_reviews_total":
                labels = sample.labels
                counts[(labels["reviewer"], labels["verdict"])] = sample.value
    return result, events, children, counts


async def test_a_reviewer_veto_stops_the_call_and_the_model_sees_why(db_url):
    veto = '{"verdict": "veto", "reason": "249 is above the cap of 100"}'
    agent = proposer(
        qa(veto), refund(249.0), {"content": "I cannot refund 249; a person will follow up."}
    )
    result, events, children, counts = await run_with_metrics(db_url, agent, "refund 1234")

    assert REFUNDS == []  # never executed
    assert result.status == "succeeded"
    assert result.output == "I cannot refund 249; a person will follow up."
    [reviewer_run] = children
    assert reviewer_run.agent == "qa" and reviewer_run.status == "succeeded"
    [requested] = of(events, ReviewRequested)
    assert (requested.reviewer, requested.rule, requested.run_id) == (
        "qa",
        "refund-above-cap",
        reviewer_run.id,
    )
    [wait] = of(events, WaitRequested)
    assert wait.wait_kind == "child" and wait.key == reviewer_run.id  # a durable child wait
    [decided] = of(events, ReviewDecided)
    assert (decided.verdict, decided.reason) == ("veto", "249 is above the cap of 100")
    [failed] = of(events, ToolFailed)
    assert failed.error_type == "vetoed"
    assert failed.message == "vetoed by reviewer qa: 249 is above the cap of 100"
    assert counts == {("qa", "veto"): 1.0}


async def test_the_reviewer_is_given_the_proposed_call(db_url):
    agent = proposer(qa("APPROVE"))
    async with Runtime(db_url) as rt:
        result = await rt.run(agent, "refund 1234")
        [child] = await rt.store.list_runs(parent_id=result.run_id)
        [started] = of(await rt.events(child.id), RunStarted)
    given = json.loads(started.input)
    assert given["agent"] == "refunds" and given["tool"] == "issue_refund"
    assert given["arguments"] == {"order": "1234", "amount": 249.0}
    assert given["rule"] == "refund-above-cap"


async def test_an_approved_call_runs_once_after_its_review(db_url):
    agent = proposer(qa("APPROVE: the order is damaged, refund it"))
    result, events, _, counts = await run_with_metrics(db_url, agent, "refund 1234")

    assert result.status == "succeeded" and REFUNDS == [249.0]
    verdicts = [(d.verdict, d.rule) for d in of(events, PolicyDecided)]
    assert verdicts == [("review", "refund-above-cap"), ("allow", "refund-above-cap")]
    assert "approved by reviewer qa" in of(events, PolicyDecided)[1].reason
    [decided] = of(events, ReviewDecided)
    assert decided.verdict == "approve" and decided.reason == "the order is damaged, refund it"
    assert of(events, ToolFinished, tool="issue_refund")[0].result["refunded"] == 249.0
    assert counts == {("qa", "approve"): 1.0}


async def test_an_edit_request_comes_back_and_the_re_proposal_runs(db_url):
    agent = proposer(
        qa('{"verdict": "edit", "reason": "refund at most 100"}'),
        refund(249.0),
        refund(100.0),  # at the cap: no review
        {"content": "Refunded 100."},
    )
    result, events, children, counts = await run_with_metrics(db_url, agent, "refund 1234")

    assert result.status == "succeeded" and result.output == "Refunded 100."
    assert REFUNDS == [100.0]
    assert len(children) == 1  # the re-proposal was below the cap: not reviewed again
    [failed] = of(events, ToolFailed)
    assert failed.error_type == "edit_requested" and "refund at most 100" in failed.message
    assert counts == {("qa", "edit"): 1.0}


async def test_a_reviewer_that_fails_is_a_veto(db_url):
    broken = Agent(name="qa", model=scripted({"error": "the model is down"}))
    agent = proposer(broken, refund(249.0), {"content": "could not refund"})
    result, events, _, _ = await run_with_metrics(db_url, agent, "refund 1234")

    assert REFUNDS == [] and result.status == "succeeded"
    [decided] = of(events, ReviewDecided)
    assert decided.verdict == "veto" and "ended failed" in decided.reason
    assert "fails closed" in decided.reason
    assert of(events, ToolFailed)[0].error_type == "vetoed"


async def test_an_answer_that_is_not_a_verdict_is_a_veto(db_url):
    agent = proposer(qa("Looks fine to me, I guess?"), refund(249.0), {"content": "no"})
    result, events, _, _ = await run_with_metrics(db_url, agent, "refund 1234")
    assert REFUNDS == [] and result.output == "no"
    [decided] = of(events, ReviewDecided)
    assert decided.verdict == "veto" and "not a verdict" in decided.reason


async def test_calls_the_rule_does_not_match_are_not_reviewed(db_url):
    agent = proposer(qa("VETO: never"), refund(20.0), {"content": "Refunded 20."})
    async with Runtime(db_url) as rt:
        result = await rt.run(agent, "refund 1234")
        events = await rt.events(result.run_id)
        children = await rt.store.list_runs(parent_id=result.run_id)
    assert REFUNDS == [20.0] and children == [] and not of(events, ReviewRequested)


async def test_reviews_are_audited(db_url):
    agent = proposer(qa("VETO: above the cap"), refund(249.0), {"content": "no"})
    async with Runtime(db_url) as rt:
        result = await rt.run(agent, "refund 1234")
        records = [
            r.entry for r in await rt.store.audit_records() if r.entry.subject == result.run_id
        ]
        verified = await verify(rt.store)
    actions = {r.action: r for r in records}
    assert "review_requested" in actions and "review_decided" in actions
    assert actions["review_decided"].actor == "agent:qa"
    assert actions["review_decided"].data["verdict"] == "veto"
    assert verified.ok, verified


def test_veto_rates_per_reviewer():
    events = [
        (i, ReviewDecided(call_id=f"c{i}", tool="t", reviewer=r, verdict=v, reason="", run_id=""))
        for i, (r, v) in enumerate(
            [("qa", "veto"), ("qa", "approve"), ("qa", "veto"), ("legal", "edit")]
        )
    ]
    rates = {r.reviewer: r for r in reviewer_rates(events)}
    assert (rates["qa"].reviews, rates["qa"].vetoed, rates["qa"].veto_rate) == (3, 2, 2 / 3)
    assert (rates["legal"].edits, rates["legal"].veto_rate) == (1, 0.0)


def test_a_rule_naming_an_undeclared_reviewer_is_refused():
    agent = Agent(
        name="refunds",
        model=scripted(refund(249.0)),
        tools=[issue_refund],
        policy=POLICY,  # review: agent:qa, and no reviewers declared
    )
    with pytest.raises(SpecError, match="does not declare"):
        Runtime(":memory:").register(agent)


def test_a_review_rule_needs_a_reviewer_and_no_other_effect():
    from bosun.govern.rule import Rule

    with pytest.raises(ValueError, match="needs `review: agent:NAME`"):
        Rule(name="r", effect="review")
    with pytest.raises(ValueError, match="effect is `review`"):
        Rule(name="r", effect="deny", review="qa")
    rule = Rule.model_validate({"name": "r", "review": "agent:qa"})
    assert (rule.effect, rule.review) == ("review", "qa")


def test_reviewers_are_pinned_and_never_shown_to_the_model():
    agent = proposer(qa("APPROVE"))
    assert "qa" not in agent.tool_map and list(agent.reviewer_map) == ["qa"]
    rebuilt = Agent.from_snapshot(agent.snapshot())
    assert rebuilt.version_id == agent.version_id and list(rebuilt.reviewer_map) == ["qa"]
    assert proposer(qa("VETO")).version_id != agent.version_id  # the reviewer is pinned whole


@tool(effect="write", sensitive=["card_pin"])
def pay(order: str, amount: float, card_pin: str) -> dict:
    """Pay out to a card."""
    return {"paid": amount}


async def test_sensitive_arguments_never_reach_the_reviewers_journal(db_url):
    agent = Agent(
        name="payer",
        model=scripted(
            {
                "tool_calls": [
                    {
                        "name": "pay",
                        "arguments": {"order": "1", "amount": 5.0, "card_pin": "9911-secret"},
                    }
                ]
            },
            {"content": "paid"},
        ),
        tools=[pay],
        reviewers=[qa("APPROVE")],
        policy={"name": "p", "rules": [{"name": "all-pay", "tools": ["pay"], "review": "qa"}]},
    )
    async with Runtime(db_url) as rt:
        result = await rt.run(agent, "pay")
        [child] = await rt.store.list_runs(parent_id=result.run_id)
        [started] = of(await rt.events(child.id), RunStarted)
    assert result.status == "succeeded"
    given = json.loads(started.input)
    assert given["arguments"]["amount"] == 5.0
    assert "9911-secret" not in started.input and given["arguments"]["card_pin"] != "9911-secret"


async def test_at_autonomy_suggest_a_person_decides_not_the_reviewer(db_url):
    agent = Agent(
        name="refunds",
        model=scripted(refund(249.0), {"content": "waiting"}),
        tools=[issue_refund],
        reviewers=[qa("APPROVE")],
        policy=POLICY,
        autonomy="suggest",
    )
    async with Runtime(db_url) as rt:
        result = await rt.run(agent, "refund 1234")
        children = await rt.store.list_runs(parent_id=result.run_id)
    assert result.status == "waiting_approval" and children == [] and REFUNDS == []


async def test_a_review_is_a_span_from_the_request_to_the_verdict(db_url):
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from bosun.observe.tracing import TraceSink, trace_id_for

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    agent = proposer(qa("VETO: above the cap"), refund(249.0), {"content": "no"})
    async with Runtime(db_url) as rt:
        observer = await Observer(rt.store, [TraceSink(rt.store, provider)]).attach(rt)
        result = await rt.run(agent, "refund 1234")
        [reviewer_run] = await rt.store.list_runs(parent_id=result.run_id)
        await observer.close()
    spans = exporter.get_finished_spans()
    [review] = [s for s in spans if s.name == "review issue_refund by qa"]
    assert review.attributes["bosun.review.verdict"] == "veto"
    assert review.attributes["bosun.review.run_id"] == reviewer_run.id
    assert review.context.trace_id == trace_id_for(result.run_id)
    # The reviewer's own run is in the same trace, under the proposer's run span.
    reviewer_span = next(s for s in spans if s.attributes.get("bosun.run.id") == reviewer_run.id
                         and s.name.startswith("invoke_agent"))  # fmt: skip
    assert reviewer_span.context.trace_id == review.context.trace_id
    assert (
        review.start_time <= reviewer_span.start_time <= reviewer_span.end_time <= review.end_time
    )
