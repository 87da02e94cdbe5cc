"""A remote A2A agent to call from Bosun: one skill, `lookup_invoice`, written with the
official a2a-sdk's server classes and served on 127.0.0.1:9999. It takes two seconds per
task (so you can watch the Bosun run park while it works) and wants a bearer token.

    INVOICES_TOKEN=demo python examples/a2a-client/remote_agent.py
"""

import asyncio
import os

import uvicorn
from a2a.helpers.proto_helpers import new_task_from_user_message
from a2a.server.agent_execution import AgentExecutor
from a2a.server.request_handlers.default_request_handler_v2 import DefaultRequestHandlerV2
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types.a2a_pb2 import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
    HTTPAuthSecurityScheme,
    Part,
    SecurityRequirement,
    SecurityScheme,
    StringList,
)
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.responses import JSONResponse

TOKEN = os.environ["INVOICES_TOKEN"]


class Invoices(AgentExecutor):
    async def execute(self, context, event_queue):
        task = context.current_task or new_task_from_user_message(context.message)
        if context.current_task is None:
            await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        await updater.start_work(updater.new_agent_message([Part(text="looking it up")]))
        await asyncio.sleep(2)
        asked = context.get_user_input()
        await updater.add_artifact([Part(text=f"{asked}: paid on 2026-11-30")], name="answer")
        await updater.complete()

    async def cancel(self, context, event_queue):
        await TaskUpdater(event_queue, context.task_id, context.context_id or "").cancel()


card = AgentCard(
    name="invoices",
    description="Answers questions about invoices",
    version="1.0.0",
    supported_interfaces=[
        AgentInterface(
            url="http://127.0.0.1:9999/a2a", protocol_binding="JSONRPC", protocol_version="1.0"
        )
    ],
    capabilities=AgentCapabilities(streaming=False),
    default_input_modes=["text/plain"],
    default_output_modes=["text/plain"],
    skills=[
        AgentSkill(
            id="lookup_invoice",
            name="Look up an invoice",
            description="Says whether and when an invoice was paid.",
            tags=["billing"],
        )
    ],
    security_schemes={
        "bearer": SecurityScheme(http_auth_security_scheme=HTTPAuthSecurityScheme(scheme="bearer"))
    },
    security_requirements=[SecurityRequirement(schemes={"bearer": StringList()})],
)
handler = DefaultRequestHandlerV2(
    agent_executor=Invoices(), task_store=InMemoryTaskStore(), agent_card=card
)


async def bearer(request, call_next):
    if request.url.path.startswith("/a2a") and (
        request.headers.get("authorization") != f"Bearer {TOKEN}"
    ):
        return JSONResponse({"error": "unauthorized"}, status_code=401)
    return await call_next(request)


app = Starlette(
    routes=[*create_agent_card_routes(card), *create_jsonrpc_routes(handler, rpc_url="/a2a")],
    middleware=[Middleware(BaseHTTPMiddleware, dispatch=bearer)],
)

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=9999, log_level="warning")
