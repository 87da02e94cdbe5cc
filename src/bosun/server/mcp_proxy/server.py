"""`ProxyServer`: the upstream tools, as the proxy's agent pinned them, served to MCP clients.

It is `BosunMCPServer` (the caller of each request: a verified API key over HTTP, the
command-line identity over stdio) with its two tool handlers replaced: `tools/list` lists
the agent's tools (the upstream's name, or `prefix` + name; its description, input and
output schema and title; annotations saying what Bosun governs it as), and `tools/call`
hands the call to the caller's session (`sessions.py`), which answers once the run has
journaled its outcome. Calling needs the `operate` permission, as starting a run does.
"""

from __future__ import annotations

import hashlib
from typing import Any

from mcp.server import ServerRequestContext
from mcp.server.mcpserver import Context
from mcp.types import (
    CallToolRequestParams,
    CallToolResult,
    InputRequiredResult,
    ListToolsResult,
    PaginatedRequestParams,
    Tool,
    ToolAnnotations,
)

from bosun.server.keys import Principal, roles_granting
from bosun.server.mcp_proxy.sessions import Sessions, error
from bosun.server.mcp_serve.server import BosunMCPServer
from bosun.server.state import ServerState
from bosun.spec.sourced import SourcedTool
from bosun.spec.vocab import Effect

SESSION_HEADER = "mcp-session-id"


def served_tool(tool: SourcedTool) -> Tool:
    """How the client sees one governed upstream tool."""
    served = (tool.served.served if tool.served else None) or {}
    return Tool(
        name=tool.name,
        title=served.get("title"),
        description=tool.description,
        input_schema=tool.schema()["function"]["parameters"],
        output_schema=served.get("outputSchema"),
        annotations=ToolAnnotations(
            read_only_hint=tool.effect == Effect.READ,
            destructive_hint=tool.effect == Effect.IRREVERSIBLE,
            idempotent_hint=tool.idempotent,
        ),
    )


class ProxyServer(BosunMCPServer):
    def __init__(
        self, state: ServerState, identity: Principal | None, sessions: Sessions, **options: Any
    ) -> None:
        super().__init__(state, identity, **options)
        self.sessions = sessions
        agent = sessions.proxy.agent
        self.served = [served_tool(t) for t in agent.tools if isinstance(t, SourcedTool)]

    def session_key(self, ctx: ServerRequestContext[Any], principal: Principal) -> str:
        """stdio: the process; HTTP: the transport's session (2025-era clients), else the
        caller's key (stateless 2026-07-28 clients)."""
        request = getattr(ctx, "request", None)
        headers = getattr(request, "headers", None)
        if headers is None:
            return "stdio"
        found = headers.get(SESSION_HEADER)
        if not found:
            return f"key:{principal.key_id}"
        # The transport's session id lets requests join a session: journal a digest of it.
        return "http:" + hashlib.sha256(found.encode()).hexdigest()[:16]

    async def _handle_list_tools(
        self, ctx: ServerRequestContext[Any], params: PaginatedRequestParams | None
    ) -> ListToolsResult:
        return ListToolsResult(tools=self.served)

    async def _handle_call_tool(
        self, ctx: ServerRequestContext[Any], params: CallToolRequestParams
    ) -> CallToolResult | InputRequiredResult:
        principal = self.principal_of(ctx)
        if principal is None:
            return error("a Bosun identity is needed: send an API key as a bearer token")
        if not principal.can("operate"):
            return error(
                f"calling tools through the proxy needs the {roles_granting('operate')} role;"
                f" this {principal.role} key ({principal.name}) cannot"
            )
        context = Context(
            request_context=ctx, mcp_server=self, input_params=params,
            subscriptions=self._subscriptions,
        )  # fmt: skip
        sent = 0

        async def progress(message: str) -> None:
            nonlocal sent
            sent += 1
            await context.report_progress(progress=sent, message=message)

        session = self.sessions.session(self.session_key(ctx, principal), principal)
        return await session.call(params.name, dict(params.arguments or {}), progress)


__all__ = ["ProxyServer", "served_tool"]
