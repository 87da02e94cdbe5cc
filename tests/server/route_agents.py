"""An agent on a learning route, for the feedback API tests (`route_agents.py:desk`)."""

from bosun import Agent
from bosun.routing import Candidate, Learn, Route, register_route
from bosun.spec.model import ModelSpec


def _scripted(name: str) -> Candidate:
    return Candidate(
        name=name,
        model=ModelSpec(provider="scripted", name=name, turns=[{"content": f"{name} says hi"}]),
    )


register_route(
    Route(
        name="api-desk",
        candidates=(_scripted("ledger"), _scripted("bard")),
        learn=Learn(refresh=0, seed=3),
    )
)
desk = Agent(name="desk", model="route:api-desk")
