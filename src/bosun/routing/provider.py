"""`route:NAME` as a model provider: choose a candidate per call, fall back on failure.

For each model call: the request's features (`routing/features.py`); the candidates that
can serve it (tools, vision, context window, cost and latency ceilings); the route's
rules (CEL) narrowing them; then an order (declared, or the learning router's, which
also picks the reasoning effort: each effort a candidate takes is an arm of its own);
then each in turn behind its shared breaker and its timeout, until one answers. The
choice, with every candidate considered and why, comes back on the response as a
`ModelRouted` event the loop journals before the answer (or on the `ModelError` when
every candidate failed).
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from bosun.errors import ModelError
from bosun.govern.rule import cel, compile_cel
from bosun.journal.events import ModelRouted
from bosun.models.base import ModelProvider, ModelRequest, ModelResponse
from bosun.models.failures import FATAL
from bosun.models.pricing import PriceTable
from bosun.routing.breakers import ModelBreakers
from bosun.routing.features import projected, request_features, vector
from bosun.spec.route import Candidate, Route
from bosun.store.base import Store

# Output tokens assumed for a cost estimate, by reasoning effort (None: no reasoning).
OUTPUT_ESTIMATE = {None: 500, "low": 1500, "medium": 4500, "high": 16500}


@dataclasses.dataclass(frozen=True)
class Arm:
    candidate: Candidate
    effort: str | None
    budget: int | None = None  # the context budget (tokens) this arm fits the request to

    @property
    def name(self) -> str:
        name = f"{self.candidate.name}@{self.effort}" if self.effort else self.candidate.name
        return f"{name}/ctx{self.budget}" if self.budget else name


def arms_of(route: Route) -> list[Arm]:
    """One arm per candidate, reasoning effort and context budget it takes."""
    out = []
    for c in route.candidates:
        for e in c.efforts or (None,):
            out.extend(Arm(c, e, b) for b in (c.budgets or (None,)))
    return out


def estimated_cost(arm: Arm, tokens: int, prices: PriceTable) -> float:
    price = arm.candidate.model.pricing or prices.price_of(arm.candidate.model.name)
    if price is None:
        return 0.0
    out = OUTPUT_ESTIMATE.get(arm.effort, 500)
    sent = min(tokens, arm.budget) if arm.budget else tokens
    return (sent * price.input_per_million + out * price.output_per_million) / 1e6


def _needs_vision(messages: list[dict[str, Any]]) -> bool:
    return any(
        isinstance(m.get("content"), list)
        and any(isinstance(p, dict) and p.get("type") == "image_url" for p in m["content"])
        for m in messages
    )


class RouteProvider:
    provider = "route"

    def __init__(self, route: Route, prices: PriceTable | None = None):
        from bosun.models.registry import build_single

        self.route = route
        self.model = f"route:{route.name}"
        self.prices = prices or PriceTable()
        self.arms = arms_of(route)
        self.budgeted = any(a.budget for a in self.arms)  # the loop passes `fit` only then
        self.providers: dict[str, ModelProvider] = {
            c.name: build_single(c.model) for c in route.candidates
        }
        self.rules = [(r, compile_cel(r.when)) for r in route.rules]
        self.breakers = ModelBreakers()
        self.embedder: Any = None  # the runtime's (`bind`), for `learn: {embed: true}`
        self._embedded: dict[str, list[float]] = {}  # a run's input, embedded once
        self.learner: Any = None  # a `routing.learner.Learner` (numpy: imported only then)
        if route.learn is not None and route.learn.enabled:
            from bosun.routing.learner import Learner

            self.learner = Learner(
                None,
                route.name,
                [a.name for a in self.arms],
                route.learn,
                dims=route.learn.dims,
                seed=route.learn.seed,
                refresh=route.learn.refresh,
            )

    def bind(self, store: Store, prices: PriceTable | None = None, embedder: Any = None) -> None:
        """Share breakers and the learned model through `store` (the Runtime calls this);
        `embedder` embeds requests for a route that learns from embeddings."""
        self.breakers = ModelBreakers(store)
        self.embedder = embedder
        if prices is not None:
            self.prices = prices
        if self.learner is not None:
            self.learner.store = store

    async def aclose(self) -> None:
        for provider in self.providers.values():
            close = getattr(provider, "aclose", None)
            if close is not None:
                await close()

    # -- choosing --------------------------------------------------------------------------

    def _rule_matches(self, program: Any, features: dict[str, Any]) -> bool:
        try:
            return bool(program.execute(cel.Context(features)))
        except Exception:
            return False

    def _eligible(
        self, request: ModelRequest, features: dict[str, Any], why: dict[str, str]
    ) -> list[int]:
        route, tokens = self.route, features["context_tokens"]
        vision = _needs_vision(request.messages)
        keep: list[int] = []
        for i, arm in enumerate(self.arms):
            c = arm.candidate
            if request.tools and "tools" not in c.capabilities:
                why[arm.name] = "no tool calls"
            elif vision and "vision" not in c.capabilities:
                why[arm.name] = "no vision"
            elif tokens > c.window:
                why[arm.name] = f"context {tokens} over window {c.window}"
            elif (
                route.max_cost_per_call is not None
                and estimated_cost(arm, tokens, self.prices) > route.max_cost_per_call
            ):
                why[arm.name] = "over the cost ceiling"
            elif route.max_latency_ms is not None and c.latency_ms > route.max_latency_ms:
                why[arm.name] = "over the latency ceiling"
            else:
                keep.append(i)
        for rule, program in self.rules:
            if not keep or not self._rule_matches(program, features):
                continue
            for i in list(keep):
                name = self.arms[i].candidate.name
                if (rule.use and name not in rule.use) or name in rule.avoid:
                    keep.remove(i)
                    why[self.arms[i].name] = f"rule {rule.when!r}"
        return keep

    async def complete(self, request: ModelRequest) -> ModelResponse:
        features = request_features(request.messages, request.turn, request.context)
        why: dict[str, str] = {}
        eligible = self._eligible(request, features, why)
        tokens = features["context_tokens"]
        costs = [estimated_cost(a, tokens, self.prices) for a in self.arms]
        policy, propensity, x = "static", 1.0, ()
        order = eligible
        if self.learner is not None and eligible:
            x = tuple(await self._vector(features))
            decision = await self.learner.decide(features["tenant"], x, costs, eligible)
            order, policy, propensity = decision.order, decision.policy, decision.propensity
            for i, text in decision.why.items():
                why[self.arms[i].name] = text
            for i in eligible:
                if i not in order and self.arms[i].name not in why:
                    why[self.arms[i].name] = "not chosen"
        first = self.arms[order[0]].name if order else ""
        tried: set[str] = set()  # a candidate failing at one effort is not tried at another
        for i in order:
            arm = self.arms[i]
            c = arm.candidate
            if c.name in tried:
                why.setdefault(arm.name, "its model failed")
                continue
            key = f"model:{c.model.endpoint}"
            if not await self.breakers.allow(key):
                why[arm.name] = "breaker open"
                tried.add(c.name)
                continue
            tried.add(c.name)
            asked = dataclasses.replace(request, effort=arm.effort) if arm.effort else request
            if arm.budget and request.fit is not None and tokens > arm.budget:
                asked = dataclasses.replace(asked, messages=await request.fit(arm.budget))
            try:
                call = self.providers[c.name].complete(asked)
                response = await (asyncio.wait_for(call, c.timeout) if c.timeout else call)
            except TimeoutError:
                await self.breakers.failure(key)
                why[arm.name] = f"timed out after {c.timeout:g} s"
                continue
            except ModelError as exc:
                await self.breakers.failure(key)
                why[arm.name] = f"failed: {exc.error_type}"
                if exc.error_type in FATAL:
                    exc.route = self._event(
                        request, "", "", why, policy, propensity, x, None, first
                    )  # type: ignore[attr-defined]
                    raise
                continue
            await self.breakers.success(key)
            why[arm.name] = "chosen" if arm.name == first else "fallback"
            for j in order:  # the ones never reached
                why.setdefault(self.arms[j].name, "not reached")
            event = self._event(
                request,
                arm.name,
                response.model or c.model.name,
                why,
                policy,
                propensity,
                x,
                arm.effort,
                first,
            )
            if self.learner is not None:
                spent = self.prices.cost(
                    response.model or c.model.name, response.usage, c.model.pricing
                )
                await self.learner.spent(spent)
            return dataclasses.replace(response, route=event, pricing=c.model.pricing)
        error = ModelError(
            f"route {self.route.name!r}: no candidate answered ("
            + "; ".join(f"{n}: {w}" for n, w in why.items())
            + ")",
            error_type="all_models_failed" if eligible else "no_candidate",
        )
        error.route = self._event(request, "", "", why, policy, propensity, x, None, first)  # type: ignore[attr-defined]
        raise error

    async def _vector(self, features: dict[str, Any]) -> list[tuple[int, float]]:
        learn = self.learner.learn
        embedding = None
        if learn.embed:
            if self.embedder is None:
                raise ModelError(
                    f"route {self.route.name!r} learns from embeddings (`learn.embed`), but"
                    " the runtime has no embedder: pass Runtime(embedder=...) or set"
                    " BOSUN_EMBEDDINGS",
                    error_type="bad_request",
                )
            text = features["text"]
            embedding = self._embedded.get(text)
            if embedding is None:
                raw = (await self.embedder.embed([text]))[0]
                embedding = projected(raw, learn.embed_dims)
                if len(self._embedded) >= 1024:  # bounded: the oldest goes first
                    self._embedded.pop(next(iter(self._embedded)))
                self._embedded[text] = embedding
        return vector(
            features, self.learner.dims, learn.text_weight, embedding, tag_weight=learn.tag_weight
        )

    def _event(
        self,
        request: ModelRequest,
        chosen: str,
        model: str,
        why: dict[str, str],
        policy: str,
        propensity: float,
        x: tuple,
        effort: str | None,
        first: str,
    ) -> ModelRouted:
        return ModelRouted(
            step=request.turn,
            route=self.route.name,
            chosen=chosen,
            model=model,
            considered=tuple(f"{a.name}: {why.get(a.name, 'eligible')}" for a in self.arms),
            policy=policy,
            propensity=round(propensity, 6),
            features=x,
            effort=effort,
            first=first,
        )


def build_route_provider(spec: Any) -> RouteProvider:
    from bosun.routing.registry import route_named

    return RouteProvider(route_named(spec.name))
