"""`call: mcp` through Bosun's MCP client layer (`bosun.tools.mcp`, docs/mcp.md).

Each MCP call task names a server (`with.transport`: `stdio` command or `http` endpoint)
and a tool (`with.parameters.name`). When the workflow loads, the server is listed once
and that tool becomes one of the workflow's tools, a `SourcedTool` pinned with its served
definition (so a changed tool is refused, as for agents), governed by its effect: the
server's annotations are not believed unless `document.metadata.bosun.mcp.trusted` says
so, and `document.metadata.bosun.mcp.effects` (`{tool: read|write|irreversible}`) says
what a tool does. The interpreter proposes the call as that tool with its `arguments`;
the worker opens its own connection. Only `method: tools/call` is supported.
"""

from __future__ import annotations

from typing import Any

from bosun.errors import SpecError
from bosun.spec.mcp import McpServer, mcp_tools
from bosun.spec.tool import Tool


def server_of(transport: dict[str, Any]) -> McpServer:
    if "stdio" in transport:
        stdio = transport["stdio"]
        return McpServer(
            command=stdio["command"],
            args=list(stdio.get("arguments") or []),
            env=sorted((stdio.get("environment") or {}).keys()),
        )
    if "http" in transport:
        http = transport["http"]
        endpoint = http.get("endpoint")
        url = endpoint.get("uri") if isinstance(endpoint, dict) else endpoint
        return McpServer(url=url, headers=dict(http.get("headers") or {}))
    raise SpecError("`with.transport` needs `stdio` (a command) or `http` (an endpoint)")


def mcp_tool(given: dict[str, Any], settings: dict[str, Any], folder: str) -> Tool:
    """The tool an MCP call task calls, listed from its server now."""
    if given.get("method") != "tools/call":
        raise SpecError(
            f"`call: mcp` with `method: {given.get('method')}`: Bosun supports `tools/call`"
        )
    params = given.get("parameters")
    if not isinstance(params, dict) or not isinstance(params.get("name"), str):
        raise SpecError("`call: mcp` needs `with.parameters.name`, the tool to call")
    name = params["name"]
    effects = dict(settings.get("effects") or {})
    tools = mcp_tools(
        server_of(given.get("transport") or {}),
        allow=[name],
        trusted=bool(settings.get("trusted")),
        effects=effects,
        folder=folder,
    )
    return tools[0]
