"""Model routes and the learning router (`model: route:NAME`): see docs/routing.md.

Importing this package registers the `route` provider, so `route:NAME` is a valid model
wherever a provider name is (the engine imports it).
"""

from bosun.models.registry import register_provider
from bosun.routing.provider import RouteProvider, build_route_provider
from bosun.routing.registry import load_routes, register_route, route_named, routes
from bosun.spec.route import Candidate, Learn, Route, Rule

register_provider("route", build_route_provider)

__all__ = [
    "Candidate",
    "Learn",
    "Route",
    "RouteProvider",
    "Rule",
    "load_routes",
    "register_route",
    "route_named",
    "routes",
]
