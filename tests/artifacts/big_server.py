"""A tiny MCP server (the official SDK, stdio) for the artifact tests.

- `big(size)`: a text of `size` bytes (`A`, then a repeating printable pattern, then `Z`),
  answered as one text part (no structured content), so its whole is exactly that text;
- `snapshot()`: a picture (a PNG of a few bytes) and a line of text, as content parts.
"""

from __future__ import annotations

import base64
import sys
from pathlib import Path

from mcp.server.mcpserver import MCPServer
from mcp.types import ImageContent, TextContent, ToolAnnotations

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pngs import png

server = MCPServer("bosun-artifacts", version="1.0")
READ = ToolAnnotations(readOnlyHint=True, idempotentHint=True)


def pattern(size: int) -> str:
    body = "".join(chr(33 + i % 90) for i in range(max(size - 2, 0)))
    return "A" + body + "Z"


@server.tool(annotations=READ, structured_output=False)
def big(size: int) -> list[TextContent]:
    """Answer `size` characters."""
    return [TextContent(type="text", text=pattern(size))]


@server.tool(annotations=READ, structured_output=False)
def snapshot() -> list[TextContent | ImageContent]:
    """A picture of the yard."""
    data = base64.b64encode(png(4, 4, (200, 10, 10))).decode()
    return [
        TextContent(type="text", text="the yard at noon"),
        ImageContent(type="image", data=data, mime_type="image/png"),
    ]


if __name__ == "__main__":
    server.run()
