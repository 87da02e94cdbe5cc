"""What the model sees of an MCP tool's answer, and what a served tool is as a definition.

A result becomes JSON-ready data: the structured content when the tool gave some, else a
single text as a string, else the content parts (text, and images and audio kept as
parts, never flattened to text). Images and audio become `Media`, which the engine
stores as artifacts: the journal and the model's context hold a reference, and the model
gets the picture or the sound as a content part (`engine/media.py`). A result longer than
the server's `max_result_chars` is an `Excerpt`: the model sees a head and a tail with a
note saying how much was cut, and the whole result is kept as an artifact that
`ToolFinished.full` references (`bosun show RUN --call ID --full`), so one huge answer
floods neither the model's context nor the journal row, and nothing of it is lost.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from bosun.spec.definition import SourceSpec, ToolDefinition
from bosun.spec.mcp import declared_effect
from bosun.spec.media import Excerpt, Media

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


def _part(block: Any) -> dict[str, Any] | Media:
    raw = block.model_dump(mode="json", by_alias=True, exclude_none=True)
    raw.pop("_meta", None)
    kind = raw.get("type")
    if kind in ("image", "audio") and "data" in raw:
        try:
            data = base64.b64decode(raw["data"], validate=True)
        except (binascii.Error, ValueError):
            return {"type": "text", "text": f"[{kind} part with invalid base64 data left out]"}
        return Media(data, raw.get("mimeType") or f"{kind}/octet-stream")
    if kind == "text":
        return {"type": "text", "text": raw.get("text", "")}
    return raw


def _whole(parts: list[dict[str, Any] | Media]) -> bytes:
    """The whole of a many-part result, for its artifact: the texts, media by digest."""
    from bosun.spec.media import reference

    shown = [reference(p) if isinstance(p, Media) else p for p in parts]
    return orjson.dumps(shown)


def result_of(result: Any, limit: int) -> Any:
    """The result of a `CallToolResult`, bounded by `limit` characters (an `Excerpt` when
    cut; media as `Media`); raises `McpToolError` for an error result."""
    parts = [_part(block) for block in result.content or []]
    texts = [p for p in parts if isinstance(p, dict) and p.get("type") == "text"]
    if result.is_error:
        text = " ".join(p["text"] for p in texts)
        raise McpToolError(excerpt(text or "the tool reported an error", limit))
    structured = result.structured_content
    if structured is not None:
        encoded = orjson.dumps(structured)
        if len(encoded) <= limit:
            return structured
        return Excerpt(excerpt(encoded.decode(), limit), encoded, "application/json")
    if len(parts) == 1 and texts:
        text = texts[0]["text"]
        if len(text) <= limit:
            return text
        return Excerpt(excerpt(text, limit), text.encode(), "text/plain; charset=utf-8")
    if all(len(p["text"]) <= limit for p in texts):
        return parts
    bounded = [
        {"type": "text", "text": excerpt(p["text"], limit)}
        if isinstance(p, dict) and p.get("type") == "text"
        else p
        for p in parts
    ]
    return Excerpt(bounded, _whole(parts), "application/json")


__all__ = ["McpToolError", "definition_of", "excerpt", "result_of"]
