"""Mounting the A2A edge on `bosun serve`'s app: for each served agent, its card at
`/a2a/NAME/.well-known/agent-card.json` (and at `/.well-known/agent-card.json` when the
server serves one agent), JSON-RPC at `/a2a/NAME`, HTTP+JSON under `/a2a/NAME/rest`; all
built with the SDK's route factories around `BosunRequestHandler`."""

from __future__ import annotations

from a2a.server.context import ServerCallContext
from a2a.server.routes import (
    DefaultServerCallContextBuilder,
    create_agent_card_routes,
    create_jsonrpc_routes,
    create_rest_routes,
)
from a2a.utils.constants import A2A_JSON_MEDIA_TYPE
from a2a.utils.error_handlers import build_rest_error_payload
from a2a.utils.errors import ContentTypeNotSupportedError
from fastapi import FastAPI
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bosun.server.a2a.access import CARD, public_agents
from bosun.server.a2a.card import agent_card, base_path
from bosun.server.a2a.handler import BosunRequestHandler
from bosun.server.auth import caller_of
from bosun.server.keys import Principal
from bosun.server.state import ServerState
from bosun.spec.a2a import A2ASettings
from bosun.spec.agent import Agent

CARD_CACHE = "public, max-age=300"  # a card changes when the server restarts with new agents
JSON_TYPES = frozenset({"application/json", A2A_JSON_MEDIA_TYPE})


class CallerContext(DefaultServerCallContextBuilder):
    """The SDK's call context, with the Bosun caller the middleware found (its key's
    tenant and role), or, for a public agent called without a key, an operator of the
    agent's `a2a.tenant` that may start and cancel its tasks and nothing else."""

    def __init__(self, agent: Agent, public: bool):
        self.agent = agent
        self.public = public

    def build(self, request: Request) -> ServerCallContext:
        context = super().build(request)
        caller = caller_of(request)
        principal: Principal | None = caller.principal if caller is not None else None
        if principal is None and self.public:
            settings = self.agent.a2a or A2ASettings()
            principal = Principal(
                key_id="a2a-public",
                tenant=settings.tenant,
                role="operator",
                name=f"public A2A caller of {self.agent.name}",
            )
        context.state["principal"] = principal
        return context


def mount_a2a(app: FastAPI, state: ServerState) -> None:
    """Add the A2A routes of the served agents (after every other route)."""
    state.a2a_public = public_agents(state, state.agents)
    base_url = state.settings.public_url or "http://127.0.0.1:8321"
    routes = []
    cards = []
    for agent in state.agents.values():
        public = agent.name in state.a2a_public
        card = agent_card(agent, base_url, public=public)
        cards.append(card)
        handler = BosunRequestHandler(state, agent, card)
        context = CallerContext(agent, public)
        prefix = base_path(agent)
        routes += create_agent_card_routes(card, card_url=prefix + CARD, cache_control=CARD_CACHE)
        for url in (prefix, prefix + "/"):  # clients that join "/" to the card's URL too
            routes += create_jsonrpc_routes(handler, rpc_url=url, context_builder=context)
        routes += create_rest_routes(handler, context_builder=context, path_prefix=prefix + "/rest")
    if len(cards) == 1:
        routes += create_agent_card_routes(cards[0], card_url=CARD, cache_control=CARD_CACHE)
    # The SDK's HTTP+JSON routes end with a `/{tenant}` mount (A2A's tenant path prefix),
    # which matches any two-segment path: it goes last, after every agent's own routes.
    app.router.routes.extend(sorted(routes, key=lambda r: isinstance(r, Mount)))


class A2AWire:
    """Two wire details the SDK leaves to the server, for A2A paths only:

    - a request whose body is not declared JSON is refused with the A2A
      `ContentTypeNotSupportedError` (JSON-RPC -32005; HTTP+JSON 415) before anyone parses
      it (the SDK would try, and answer a parse error or take it);
    - HTTP+JSON answers are labelled `application/json`, as the binding requires
      (spec section 11.1; the SDK labels them `application/a2a+json`, a type clients that
      check for JSON do not recognise).
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "") if scope["type"] == "http" else ""
        if not path.startswith("/a2a/"):
            await self.app(scope, receive, send)
            return
        parts = path.rstrip("/").split("/")
        if len(parts) == 3 and scope["method"] == "POST":  # /a2a/NAME: JSON-RPC
            ctype = Headers(scope=scope).get("content-type", "").split(";")[0].strip().lower()
            if ctype not in JSON_TYPES:
                body = {
                    "jsonrpc": "2.0",
                    "id": None,
                    "error": {
                        "code": -32005,
                        "message": f"Content-Type {ctype or 'none'!r} is not supported:"
                        " send JSON-RPC requests as application/json",
                    },
                }
                await JSONResponse(body, status_code=200)(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return

        if "/rest/" in path and scope["method"] in ("POST", "PUT", "PATCH"):
            ctype = Headers(scope=scope).get("content-type", "").split(";")[0].strip().lower()
            if ctype not in JSON_TYPES:
                error = ContentTypeNotSupportedError(
                    message=f"Content-Type {ctype or 'none'!r} is not supported: send application/json"
                )
                payload = build_rest_error_payload(error)
                payload["error"]["code"] = 415  # the binding's status for it (spec 5.4)
                await JSONResponse(payload, status_code=415)(scope, receive, send)
                return

        async def relabel(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if headers.get("content-type", "").startswith(A2A_JSON_MEDIA_TYPE):
                    headers["content-type"] = "application/json"
            await send(message)

        await self.app(scope, receive, relabel if "/rest/" in path else send)
