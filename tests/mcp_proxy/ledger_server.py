"""A tiny upstream MCP server (the official SDK's `MCPServer`, over stdio) with a write and
an irreversible tool, for the proxy's tests. Each effect is appended to the file named by
`LEDGER` (passed through the proxy file's `env` allow-list), so a test can see what ran.

- `balance()`: read-only; the number of entries written so far.
- `record(note)`: a write (not destructive); appends `note`.
- `wire(amount, to)`: irreversible (no annotations: destructive by default); appends it.
"""

from __future__ import annotations

import os

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

LEDGER = os.environ.get("LEDGER", "ledger.txt")
server = MCPServer("ledger", version="1.0")


def _lines() -> list[str]:
    if not os.path.exists(LEDGER):
        return []
    with open(LEDGER) as f:
        return f.read().splitlines()


def _append(line: str) -> None:
    with open(LEDGER, "a") as f:
        f.write(line + "\n")


@server.tool(annotations=ToolAnnotations(readOnlyHint=True))
def balance() -> str:
    """How many entries the ledger holds."""
    return f"{len(_lines())} entries"


@server.tool(annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=False))
def record(note: str) -> str:
    """Append a note to the ledger."""
    _append(f"note {note}")
    return f"recorded {note}"


@server.tool()
def wire(amount: float, to: str) -> str:
    """Wire money (irreversible)."""
    _append(f"wire {amount} {to}")
    return f"wired {amount} to {to}"


if __name__ == "__main__":
    server.run()
