"""Which A2A paths need no API key: agent cards (discovery is public, as A2A expects),
and the endpoints of an agent declared `a2a: {public: true}` that the server honours
(bound to loopback, or started with `--a2a-public-anywhere`). Read by the authentication
middleware from the path alone, before any body is read."""

from __future__ import annotations

import ipaddress
import logging

from starlette.types import Scope

from bosun.server.state import ServerState
from bosun.spec.agent import Agent

CARD = "/.well-known/agent-card.json"
log = logging.getLogger("bosun.server.a2a")


def is_card(path: str) -> bool:
    return path == CARD or (path.startswith("/a2a/") and path.endswith(CARD))


def open_to_anyone(scope: Scope, path: str) -> bool:
    state: ServerState | None = getattr(scope["app"].state, "bosun", None)
    if state is None:
        return False
    name = path[len("/a2a/") :].split("/", 1)[0]
    return name in state.a2a_public


def loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def public_agents(state: ServerState, agents: dict[str, Agent]) -> frozenset[str]:
    """The agents whose `public: true` is honoured here; the others are said so, once."""
    settings = state.settings
    wanted = [a.name for a in agents.values() if a.a2a is not None and a.a2a.public]
    if not wanted or settings.a2a_public_anywhere or loopback(settings.host):
        return frozenset(wanted)
    log.warning(
        "agents %s declare `a2a: {public: true}` but the server is bound to %s, not loopback:"
        " they need an API key (start with --a2a-public-anywhere to open them)",
        ", ".join(wanted),
        settings.host,
    )
    return frozenset()
