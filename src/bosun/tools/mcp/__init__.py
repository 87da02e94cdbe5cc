"""MCP servers as a tool source (docs/mcp.md).

Importing this package (which `import bosun` does) registers the `mcp` source kind and
the discovery an agent file's `mcp:` entries use. The SDK itself (`mcp`) is imported only
when a server is first reached, so an agent without MCP tools never pays for it.

    from bosun import Agent
    from bosun.tools.mcp import mcp_tools

    agent = Agent(
        name="clock",
        tools=[*mcp_tools({"command": "mcp-server-time"}, effects={"*": "read"})],
    )
"""

from __future__ import annotations

import asyncio
import concurrent.futures

from bosun.errors import SpecError
from bosun.spec.definition import SourceSpec, ToolDefinition
from bosun.spec.mcp import McpServer, mcp_tools, register_discoverer
from bosun.tools.mcp.source import McpSource
from bosun.tools.sources import register_source_kind


async def discover_once(spec: SourceSpec) -> list[ToolDefinition]:
    """Connect to the server, list what it serves, disconnect."""
    source = McpSource(spec)
    await source.open()
    try:
        return await source.discover()
    finally:
        await source.close()


def discover_now(spec: SourceSpec) -> list[ToolDefinition]:
    """`discover_once` from synchronous code (loading an agent), inside a running event
    loop too: then on a thread of its own, with its own loop."""
    from bosun.errors import SourceUnavailable

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        running = False
    else:
        running = True
    try:
        if not running:
            return asyncio.run(discover_once(spec))
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="bosun-mcp") as pool:
            return pool.submit(asyncio.run, discover_once(spec)).result()
    except SourceUnavailable as exc:
        raise SpecError(f"{exc} (needed to list its tools for the agent)") from None


register_source_kind("mcp", McpSource)
register_discoverer(discover_now)

__all__ = ["McpServer", "McpSource", "discover_once", "mcp_tools"]
