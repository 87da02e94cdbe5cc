"""Tool execution (and, later, MCP clients and sandboxes). Tool *definitions* live in `bosun.spec`."""

from bosun.tools.execute import ToolOutcome, execute_tool

__all__ = ["ToolOutcome", "execute_tool"]
