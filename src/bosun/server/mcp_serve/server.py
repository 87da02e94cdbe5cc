"""`BosunMCPServer`: the SDK's `MCPServer` with Bosun's caller in every request.

Who is calling decides what is served. Over HTTP the caller is the Bosun API key the
request's bearer token names (`guard.py` verifies it and leaves a `Principal` in the ASGI
scope); over stdio, and in conformance-fixtures mode, it is the identity given on the
command line (the person who started the process has the database anyway, like `bosun keys
create`). Each Bosun tool names the permission it needs (`read`, `operate`, `approve`);
`tools/list` shows a caller only the tools its role may call, and a call without the
permission is refused with the role that would be needed, never attempted.
"""

from __future__ import annotations

from typing import Any

from mcp.server import ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.types import (
    CallToolRequestParams,
    CallToolResult,
    InputRequiredResult,
    ListToolsResult,
    PaginatedRequestParams,
    TextContent,
)

from bosun.server.keys import Principal, roles_granting
from bosun.server.state import ServerState

PRINCIPAL_KEY = "bosun_principal"  # where guard.py leaves the caller in the ASGI scope's state


class BosunMCPServer(MCPServer[Any]):
    """An MCP server whose Bosun tools (agents, control plane) are gated by the caller's role.

    `state` is the same `ServerState` `bosun serve` builds, so every Bosun tool goes through
    `bosun.server.ops` (tenants, roles, redaction) like the API and the console do.
    `identity` is the caller of requests that carry no HTTP request (stdio) or whose HTTP
    server takes no credentials (conformance fixtures on loopback)."""

    def __init__(self, state: ServerState, identity: Principal | None, **options: Any) -> None:
        super().__init__(**options)
        self.bosun = state
        self.identity = identity
        self.permissions: dict[str, str] = {}  # tool name -> permission; absent: anyone

    def gate(self, tool: str, permission: str) -> None:
        """Serve `tool` only to callers holding `permission`."""
        self.permissions[tool] = permission

    def principal_of(self, ctx: Context | ServerRequestContext[Any] | None) -> Principal | None:
        """The caller of this request: the HTTP request's verified key, else `identity`."""
        request_context = ctx.request_context if isinstance(ctx, Context) else ctx
        request = getattr(request_context, "request", None)
        scope = getattr(request, "scope", None)
        if isinstance(scope, dict):
            found = scope.get("state", {}).get(PRINCIPAL_KEY)
            if found is not None:
                return found
        return self.identity

    def refusal(self, tool: str, principal: Principal | None) -> str | None:
        """Why `principal` may not call `tool` (None: it may)."""
        permission = self.permissions.get(tool)
        if permission is None:
            return None
        if principal is None:
            return f"tool {tool} needs a Bosun identity: send an API key as a bearer token"
        if principal.can(permission):
            return None
        return (
            f"tool {tool} needs the {roles_granting(permission)} role; this {principal.role}"
            f" key ({principal.name}, tenant {principal.tenant}) cannot call it"
        )

    async def _handle_list_tools(
        self, ctx: ServerRequestContext[Any], params: PaginatedRequestParams | None
    ) -> ListToolsResult:
        principal = self.principal_of(ctx)
        tools = [t for t in await self.list_tools() if self.refusal(t.name, principal) is None]
        return ListToolsResult(tools=tools)

    async def _handle_call_tool(
        self, ctx: ServerRequestContext[Any], params: CallToolRequestParams
    ) -> CallToolResult | InputRequiredResult:
        why = self.refusal(params.name, self.principal_of(ctx))
        if why is not None:
            return CallToolResult(content=[TextContent(type="text", text=why)], is_error=True)
        return await super()._handle_call_tool(ctx, params)


def caller(ctx: Context) -> tuple[ServerState, Principal]:
    """The server state and the (already permitted) caller of a Bosun tool's request."""
    server = ctx.mcp_server
    assert isinstance(server, BosunMCPServer)
    principal = server.principal_of(ctx)
    assert principal is not None  # `_handle_call_tool` refused the call otherwise
    return server.bosun, principal
