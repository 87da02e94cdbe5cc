"""Routes by name: `register_route(Route(...))` in Python, `load_routes(path)` for YAML.

An agent names a route as its model (`model: route:support-models`, or
`Agent(model="route:support-models")`); the route's definition is pinned in the agent's
version snapshot (`snapshot()["route"]`), so routes are registered before the agent is
registered or run, and a changed route makes a new agent version. YAML:

    routes:
      - name: support-models
        candidates:
          - {name: small, model: {provider: openai, name: gpt-4.1-nano}, window: 128000}
          - {name: large, model: {provider: anthropic, name: claude-sonnet-4-5}}
        rules:
          - {when: "context_tokens > 100000", use: [large]}
        learn: {cost_price: 20}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bosun.errors import SpecError
from bosun.spec.route import REGISTERED, Route
from bosun.spec.yaml_lines import did_you_mean

_ROUTES = REGISTERED


def register_route(route: Route | dict[str, Any]) -> Route:
    """Make `route:NAME` usable as a model (registering a name again replaces it)."""
    if not isinstance(route, Route):
        route = Route.model_validate(route)
    _ROUTES[route.name] = route
    return route


def route_named(name: str) -> Route:
    route = _ROUTES.get(name)
    if route is None:
        hint = did_you_mean(name, tuple(_ROUTES), listing="the routes are")
        raise SpecError(
            f"model route {name!r} is not defined: register it (bosun.routing.register_route"
            f" or load_routes) before running the agent{hint}"
        )
    return route


def routes() -> dict[str, Route]:
    return dict(_ROUTES)


def load_routes(path: str | Path) -> list[Route]:
    """Register every route of a YAML file (`routes:` a list of routes)."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    entries = data.get("routes") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise SpecError(f"{path}: write `routes:` as a list of routes")
    try:
        return [register_route(entry) for entry in entries]
    except ValueError as exc:
        raise SpecError(f"{path}: {exc}") from None
