"""A model route: an agent's `model: route:NAME` picks one of several candidates per call.

Candidates are whole `ModelSpec`s (any registered provider) with what a route needs to
choose among them: a name, a context window, capabilities, the reasoning efforts the model
takes. Static rules (CEL over the request's features) narrow the candidates; ceilings drop
those too dear or too slow; what is left is tried in order (or in the learning router's
order, `learn:`), each failure, timeout or open breaker falling back to the next.
Defined in Python (`Route(...)`, `register_route`) or YAML (`bosun.routing.load_routes`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from bosun.spec.model import ModelSpec
from bosun.spec.where import SpecModel

Effort = Literal["low", "medium", "high"]
CAPABILITIES = ("tools", "vision", "reasoning")


class Candidate(SpecModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    field_prefix = "candidate"

    name: str = Field(min_length=1)
    model: ModelSpec
    window: int = Field(default=128_000, gt=0, description="context window, tokens")
    capabilities: frozenset[Literal["tools", "vision", "reasoning"]] = frozenset({"tools"})
    efforts: tuple[Effort, ...] = Field(
        default=(), description="reasoning efforts this model takes (the router may choose)"
    )
    # Context budgets (tokens) the router may choose per request: each is an arm of its
    # own, and the conversation is fitted to it by the agent's context policy.
    budgets: tuple[int, ...] = Field(
        default=(), description="context budgets the router may choose (tokens)"
    )
    # Typical latency, for `max_latency_ms` before any call was measured.
    latency_ms: float = Field(default=1000.0, ge=0)
    timeout: float | None = Field(default=None, gt=0, description="seconds, then fall back")


class Rule(SpecModel):
    """`when` (CEL over the request's features) then keep only `use`, or drop `avoid`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    field_prefix = "rule"

    when: str
    use: tuple[str, ...] = ()
    avoid: tuple[str, ...] = ()


class Learn(SpecModel):
    """The learning router's settings (`bosun.routing.bandit`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    field_prefix = "learn"

    enabled: bool = True
    # Reward = quality (0..1) - cost_price * dollars: what a dollar is worth in quality.
    cost_price: float = Field(default=0.0, ge=0)
    exploration: float = Field(default=0.5, ge=0, description="posterior scale; 0 = greedy")
    min_propensity: float = Field(default=0.02, ge=0, le=0.5, description="bounded exploration")
    budget_per_hour: float | None = Field(default=None, gt=0, description="dollars, paced")
    prior: float = Field(default=1.0, gt=0, description="ridge prior (pseudo-observations)")
    dims: int = Field(default=128, ge=16, le=4096, description="hashed feature dimensions")
    text_weight: float = Field(
        default=1.0, ge=0, description="weight of the request's words (0: counts only)"
    )
    refresh: float = Field(default=1.0, ge=0, description="seconds a worker reuses the model")
    # The request's embedding (the runtime's embedder: `Runtime(embedder=...)`,
    # `BOSUN_EMBEDDINGS`) projected onto `embed_dims` of the `dims` coordinates.
    embed: bool = False
    embed_dims: int = Field(default=64, ge=4, le=1024)
    tag_weight: float = Field(default=0.0, ge=0, description="weight of each tag k=v")
    seed: int | None = Field(default=None, description="fix the draws (tests, replays)")


class Route(SpecModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    field_prefix = "route"

    name: str = Field(min_length=1)
    candidates: tuple[Candidate, ...] = Field(min_length=1)
    rules: tuple[Rule, ...] = ()
    max_cost_per_call: float | None = Field(default=None, gt=0, description="dollars, estimated")
    max_latency_ms: float | None = Field(default=None, gt=0)
    learn: Learn | None = None

    @model_validator(mode="after")
    def _known_names(self) -> Route:
        names = [c.name for c in self.candidates]
        if len(set(names)) != len(names):
            raise ValueError(f"route {self.name!r}: candidate names repeat: {names}")
        for rule in self.rules:
            unknown = [n for n in (*rule.use, *rule.avoid) if n not in names]
            if unknown:
                raise ValueError(
                    f"route {self.name!r}: rule {rule.when!r} names {unknown}, "
                    f"not candidates (they are {names})"
                )
        return self

    def candidate(self, name: str) -> Candidate:
        return next(c for c in self.candidates if c.name == name)


# Routes by name (`bosun.routing.register_route`, `load_routes`): kept in the spec layer so
# an agent's version snapshot pins the definition of the route it names.
REGISTERED: dict[str, Route] = {}


def pinned_route(name: str) -> dict[str, Any] | None:
    """The registered route `name` as a version snapshot pins it (None: not registered)."""
    route = REGISTERED.get(name)
    return None if route is None else route.model_dump(mode="json", exclude_defaults=True)
