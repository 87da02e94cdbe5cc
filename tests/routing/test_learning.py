"""The learning router through real runs on a real store: it discovers from feedback that
one model answers a class of requests better; off-line evaluation from the journal
agrees with the truth of a replay; feedback through the CLI and the HTTP API; pins and
resets; budget pacing holds spend to the pace line."""

from __future__ import annotations

import asyncio

import pytest

from bosun import Agent, Runtime
from bosun.cli import main
from bosun.journal.events import ModelRouted
from bosun.routing import Candidate, Learn, Route, register_route
from bosun.routing.evaluate import always, estimates, logged
from bosun.routing.features import request_features, vector
from bosun.routing.learner import Learner
from bosun.routing.rewards import give_feedback
from bosun.spec.model import ModelSpec, Pricing

BILLING = ["refund my invoice charge", "why was my card charged twice", "invoice total wrong"]
POETRY = ["write a poem about rain", "a sonnet about the sea", "rhyme verse for spring"]


def scripted(name: str, answer: str) -> Candidate:
    model = ModelSpec(
        provider="scripted",
        name=name,
        turns=[{"content": answer}],
        pricing=Pricing(input_per_million=0, output_per_million=0),
    )
    return Candidate(name=name, model=model)


def learning_route(name: str, **learn) -> Route:
    settings = {"exploration": 1.0, "min_propensity": 0.05, "refresh": 0, "seed": 7, **learn}
    return register_route(
        Route(
            name=name,
            candidates=(scripted("ledger", "billing answer"), scripted("bard", "poetry answer")),
            learn=Learn(**settings),
        )
    )


def right(prompt: str, chosen: str) -> float:
    return float((prompt in BILLING) == (chosen == "ledger"))


async def routed(rt: Runtime, run_id: str) -> ModelRouted:
    return next(e for _, e in await rt.events(run_id) if isinstance(e, ModelRouted))


async def train(rt: Runtime, agent: Agent, rounds: int) -> list[float]:
    scores = []
    for i in range(rounds):
        prompt = (BILLING + POETRY)[i % 6]
        run = await rt.run(agent, prompt)
        decision = await routed(rt, run.run_id)
        score = right(prompt, decision.chosen)
        await give_feedback(rt.store, run.run_id, score)
        scores.append(score)
    return scores


async def test_the_router_discovers_which_model_answers_a_class_better(sqlite_path):
    learning_route("t-discover")
    agent = Agent(name="desk", model="route:t-discover")
    async with Runtime(sqlite_path) as rt:
        scores = await train(rt, agent, 120)
        first = await routed(rt, (await rt.store.list_runs(limit=200))[-1].id)
    assert first.policy == "learned" and first.propensity == pytest.approx(0.5)
    assert len(first.features) > 3
    assert sum(scores[:20]) / 20 < 0.8  # it starts out guessing
    assert sum(scores[-30:]) / 30 >= 0.9  # and ends up knowing


async def test_off_line_evaluation_agrees_with_the_truth(sqlite_path):
    learning_route("t-evaluate", exploration=3.0, min_propensity=0.2)
    agent = Agent(name="desk", model="route:t-evaluate")
    async with Runtime(sqlite_path) as rt:
        await train(rt, agent, 240)
        log = await logged(rt.store, "t-evaluate", "default", cost_price=0.0)
    arms = ["ledger", "bard"]
    billing = {
        tuple(vector(request_features([{"role": "user", "content": p}], 0, {"agent": "desk"}), 128))
        for p in BILLING
    }

    def oracle(x):
        return [1.0, 0.0] if tuple(x) in billing else [0.0, 1.0]

    assert len(log) == 240
    truth = {"ledger": 0.5, "bard": 0.5, "oracle": 1.0}  # half the requests are billing
    for name, policy in (
        ("ledger", always(arms, "ledger")),
        ("bard", always(arms, "bard")),
        ("oracle", oracle),
    ):
        got = estimates(log, arms, policy, 128)
        assert got["dr"] == pytest.approx(truth[name], abs=0.1), (name, got)
        assert got["snips"] == pytest.approx(truth[name], abs=0.12), (name, got)


def test_feedback_through_the_cli_and_pins_and_resets(sqlite_path, capsys):
    learning_route("t-cli")
    agent = Agent(name="desk", model="route:t-cli")

    async def one_run() -> tuple[str, ModelRouted]:
        async with Runtime(sqlite_path) as rt:
            run = await rt.run(agent, BILLING[0])
            return run.run_id, await routed(rt, run.run_id)

    async def rows() -> tuple:
        async with Runtime(sqlite_path) as rt:
            return await rt.store.feedback(run_id=run_id), await rt.store.router_state("t-cli")

    run_id, _ = asyncio.run(one_run())
    assert (
        main(["feedback", run_id, "--score", "1", "--comment", "spot on", "--db", sqlite_path]) == 0
    )
    assert "1 routing decision(s) learnt" in capsys.readouterr().out
    assert main(["feedback", run_id, "--score", "7", "--db", sqlite_path]) != 0
    assert (
        main(
            [
                "router",
                "pin",
                "t-cli",
                "--tenant",
                "default",
                "--candidate",
                "bard",
                "--db",
                sqlite_path,
            ]
        )
        == 0
    )
    _, pinned = asyncio.run(one_run())
    assert (pinned.chosen, pinned.policy) == ("bard", "pinned")
    [fb], state = asyncio.run(rows())
    assert (fb.score, fb.comment, fb.source) == (1.0, "spot on", "person")
    assert state is not None
    assert main(["router", "evaluate", "t-cli", "--db", sqlite_path]) == 0
    assert "always ledger" in capsys.readouterr().out
    assert main(["router", "reset", "t-cli", "--db", sqlite_path]) == 0
    assert asyncio.run(rows())[1] is None


async def test_budget_pacing_keeps_spend_on_the_pace_line(sqlite_store):
    now = [0.0]
    learn = Learn(budget_per_hour=1.0, exploration=0, min_propensity=0, refresh=0, seed=1)
    learner = Learner(sqlite_store, "t-pace", ["cheap", "dear"], learn, clock=lambda: now[0])
    x = [(0, 1.0)]
    for _ in range(20):  # the dear one is better: without a budget it would always be chosen
        await learner.update("default", "dear", x, 1.0)
        await learner.update("default", "cheap", x, 0.2)
    costs = [0.001, 0.05]
    chosen, spent = [], 0.0
    for minute in range(60):
        now[0] = minute * 60.0
        decision = await learner.decide("default", x, costs, [0, 1])
        arm = decision.order[0]
        chosen.append(arm)
        spent += costs[arm]
        await learner.spent(costs[arm])
        line = max(0.02, minute / 60)
        assert spent <= line + costs[1]  # never ahead of the pace line by more than a call
    assert spent <= 1.0
    assert 0 < chosen.count(1) < 60  # the dear model when the pace allows it
    assert chosen[0] == 0  # the hour starts with the pace line at 2%: too dear yet
    assert (await learner.spend())[1] == pytest.approx(spent)


async def test_the_same_mechanism_learns_the_reasoning_effort(sqlite_path):
    thinker = Candidate(
        name="thinker",
        efforts=("low", "high"),
        capabilities={"tools", "reasoning"},
        model=ModelSpec(provider="scripted", name="thinker", turns=[{"content": "42"}]),
    )
    register_route(
        Route(
            name="t-effort",
            candidates=(thinker,),
            learn=Learn(exploration=1.0, min_propensity=0.05, refresh=0, seed=5),
        )
    )
    agent = Agent(name="solver", model="route:t-effort")
    chosen = []
    async with Runtime(sqlite_path) as rt:
        for _ in range(60):  # hard puzzles: only high effort solves them
            run = await rt.run(agent, "a hard puzzle with many steps")
            decision = await routed(rt, run.run_id)
            chosen.append(decision.effort)
            await give_feedback(rt.store, run.run_id, float(decision.effort == "high"))
    assert decision.chosen in ("thinker@low", "thinker@high")
    assert set(chosen[:15]) == {"low", "high"}  # both tried
    assert chosen[-15:].count("high") >= 13
