"""What the model sees of an MCP tool's answer, and what a served tool is as a definition.

A result becomes JSON-ready data: the structured content when the tool gave some, else a
single text as a string, else the content parts (text, and images and audio kept as
parts with their MIME type, never flattened to text). A result longer than the server's
`max_result_chars` is cut to a head and a tail with a note saying how much was cut, so
one huge answer can neither flood the model's context nor the journal row.
"""

from __future__ import annotations

from typing import Any

import orjson

from bosun.spec.definition import SourceSpec, ToolDefinition
from bosun.spec.mcp import declared_effect

# The fields of a served tool that its digest covers (its `_meta`, icons and execution
# hints are not something the model reads or governance decides on).
DEFINED = ("name", "title", "description", "inputSchema", "outputSchema", "annotations")


class McpToolError(RuntimeError):
    """The server answered the call with `isError: true`: the tool itself failed."""


def definition_of(tool: Any, spec: SourceSpec, trusted: bool) -> ToolDefinition:
    """A served MCP tool (`mcp.types.Tool`) as a Bosun definition; deterministic, so the
    same tool served again has the same digest."""
    raw = tool.model_dump(mode="json", by_alias=True, exclude_none=True)
    served = {key: raw[key] for key in DEFINED if key in raw}
    effect, idempotent = declared_effect(served.get("annotations") or {}, trusted)
    return ToolDefinition(
        name=raw["name"],
        description=raw.get("description") or raw.get("title") or raw["name"],
        parameters=raw.get("inputSchema") or {"type": "object"},
        effect=effect,
        idempotent=idempotent,
        trusted=trusted,
        source_kind="mcp",
        source_id=spec.identity,
        served=served,
    )


def excerpt(text: str, limit: int) -> str:
    """`text` when it fits in `limit` characters, else its head and tail with a note."""
    if len(text) <= limit:
        return text
    tail = limit // 4
    head = limit - tail
    cut = len(text) - head - tail
    return (
        f"{text[:head]}\n\n[... {cut:,} of {len(text):,} characters cut here by Bosun: the "
        f"result is longer than this server's max_result_chars ({limit:,}) ...]\n\n"
        f"{text[-tail:] if tail else ''}"
    )


def _part(block: Any, limit: int) -> dict[str, Any]:
    raw = block.model_dump(mode="json", by_alias=True, exclude_none=True)
    raw.pop("_meta", None)
    kind = raw.get("type")
    if kind == "text":
        return {"type": "text", "text": excerpt(raw.get("text", ""), limit)}
    if kind in ("image", "audio") and len(raw.get("data", "")) > limit:
        size = len(raw.pop("data"))
        raw["note"] = f"{kind} of {size:,} base64 characters left out (over max_result_chars)"
    return raw


def result_of(result: Any, limit: int) -> Any:
    """The JSON-ready result of a `CallToolResult`, bounded by `limit` characters; raises
    `McpToolError` for an error result."""
    parts = [_part(block, limit) for block in result.content or []]
    if result.is_error:
        text = " ".join(p.get("text", "") for p in parts if p.get("type") == "text")
        raise McpToolError(excerpt(text or "the tool reported an error", limit))
    structured = result.structured_content
    if structured is not None:
        encoded = orjson.dumps(structured).decode()
        return structured if len(encoded) <= limit else excerpt(encoded, limit)
    if len(parts) == 1 and parts[0].get("type") == "text":
        return parts[0]["text"]
    return parts


__all__ = ["McpToolError", "definition_of", "excerpt", "result_of"]
