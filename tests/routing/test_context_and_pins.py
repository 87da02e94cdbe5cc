"""The router chooses the context budget per request (from the same rewards as the model),
the agent's context policy fitting the conversation to it; and a route's definition is
pinned in the agent's version: a changed route is a new version, and runs of the old
version keep the old route."""

from __future__ import annotations

from bosun import Agent, Runtime
from bosun.journal.events import ContextFitted, ModelRouted
from bosun.models.base import ModelRequest, ModelResponse, Usage
from bosun.models.registry import register_provider
from bosun.routing import Candidate, Learn, Route, register_route
from bosun.routing.rewards import give_feedback
from bosun.spec.model import ModelSpec, Pricing

SEEN: list[int] = []  # characters each model call was sent, in order
DOCUMENT = " ".join(f"line {i}: the ledger entry number {i} reads fine." for i in range(120))


class Reader:
    """Answers with how much it was sent: a quote needs the whole document."""

    def __init__(self, spec: ModelSpec):
        self.provider, self.model = "reader", spec.name

    async def complete(self, request: ModelRequest) -> ModelResponse:
        chars = sum(len(str(m.get("content") or "")) for m in request.messages)
        SEEN.append(chars)
        return ModelResponse(content=f"read {chars}", usage=Usage(chars // 4, 5), model=self.model)


register_provider("reader", Reader, offline=True)


def reader(budgets: tuple[int, ...]) -> Candidate:
    model = ModelSpec(
        provider="reader",
        name="reader",
        pricing=Pricing(input_per_million=1000, output_per_million=0),
    )
    return Candidate(name="reader", model=model, budgets=budgets)


async def test_the_router_learns_the_context_budget_each_request_needs(sqlite_path):
    register_route(
        Route(
            name="t-context",
            candidates=(reader((300, 100_000)),),
            # A dollar is worth 0.4 of quality: the whole document (~1,500 tokens at $1000
            # per million) costs ~0.6 of it, so it pays only where it is needed.
            learn=Learn(
                cost_price=0.4,
                exploration=1.0,
                min_propensity=0.05,
                refresh=0,
                seed=3,
                text_weight=0,
                tag_weight=1.0,
            ),
        )
    )
    agent = Agent(name="clerk", model="route:t-context")
    chosen: dict[str, list[str]] = {"quote": [], "gist": []}
    async with Runtime(sqlite_path) as rt:
        for i in range(80):
            task = ("quote", "gist")[i % 2]
            SEEN.clear()
            run = await rt.run(agent, f"{task}: {DOCUMENT}", tags={"task": task})
            events = [e for _, e in await rt.events(run.run_id)]
            decision = next(e for e in events if isinstance(e, ModelRouted))
            chosen[task].append(decision.chosen)
            whole = SEEN[-1] >= len(DOCUMENT)
            if decision.chosen == "reader/ctx300":
                # the agent's context policy fitted the request to the chosen budget
                fitted = next(e for e in events if isinstance(e, ContextFitted))
                assert fitted.budget == 300 and not whole
            else:
                assert whole and not any(isinstance(e, ContextFitted) for e in events)
            await give_feedback(rt.store, run.run_id, float(whole or task == "gist"))
    assert set(chosen["quote"][:15]) == {"reader/ctx300", "reader/ctx100000"}  # both tried
    assert chosen["quote"][-12:].count("reader/ctx100000") >= 10  # a quote needs it all
    assert chosen["gist"][-12:].count("reader/ctx300") >= 10  # a gist does not: cheaper


def route_over(model_name: str) -> Route:
    spec = ModelSpec(provider="scripted", name=model_name, turns=[{"content": model_name}])
    return register_route(Route(name="t-pinned", candidates=(Candidate(name="c", model=spec),)))


async def test_a_changed_route_is_a_new_version_and_old_runs_keep_theirs(sqlite_path):
    route_over("first-model")
    before = Agent(name="pinned", model="route:t-pinned")
    assert before.snapshot()["route"]["candidates"][0]["model"]["name"] == "first-model"
    route_over("second-model")  # the route changes under the same name
    after = Agent(name="pinned", model="route:t-pinned")
    assert after.version_id != before.version_id
    async with Runtime(sqlite_path) as rt:
        old = await rt.run(before, "hello")
        new = await rt.run(after, "hello")
        assert old.output == "first-model" and new.output == "second-model"
        # a worker rebuilding the old version from its journaled snapshot uses its route
        row = await rt.store.get_run(old.run_id)
        rebuilt = Agent.from_snapshot(row.spec)
        assert rebuilt.version_id == before.version_id
        provider = rt.provider_for(rebuilt)
        assert provider.route.candidates[0].model.name == "first-model"


async def test_the_request_embedding_is_a_feature_and_needs_an_embedder(sqlite_path):
    spec = ModelSpec(provider="scripted", name="m", turns=[{"content": "ok"}])
    register_route(
        Route(
            name="t-embed",
            candidates=(Candidate(name="a", model=spec), Candidate(name="b", model=spec)),
            learn=Learn(embed=True, dims=192, embed_dims=64, refresh=0, seed=1),
        )
    )
    agent = Agent(name="embedded", model="route:t-embed")
    async with Runtime(sqlite_path, embedder="hash") as rt:
        run = await rt.run(agent, "what does clause 7 of the lease say")
        routed = next(e for _, e in await rt.events(run.run_id) if isinstance(e, ModelRouted))
    assert run.output == "ok"
    assert sum(1 for i, _ in routed.features if i >= 128) > 32  # the projected embedding
    async with Runtime(sqlite_path) as rt:  # no embedder: a clear failure, not a guess
        run = await rt.run(agent, "what does clause 7 of the lease say")
    assert run.status == "failed" and "no embedder" in (run.reason or "")
