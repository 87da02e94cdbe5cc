"""OpenAI chat messages and tool schemas, translated to the Anthropic and Gemini shapes.

Bosun's journal folds into OpenAI chat messages (`models/base.py` says why), so a
provider for another API translates at its edge, here, and nowhere else. Content parts
other than text (images by reference, already expanded to data URLs) become the other
API's image blocks where it takes them; anything it cannot carry is said in text, never
dropped silently.
"""

from __future__ import annotations

import base64
import json
from typing import Any


def _text_of(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return str(content)


def _data_url(part: dict[str, Any]) -> tuple[str, str] | None:
    """(media type, base64 data) of an OpenAI `image_url` part holding a data URL."""
    url = (part.get("image_url") or {}).get("url", "")
    if not isinstance(url, str) or not url.startswith("data:") or ";base64," not in url:
        return None
    head, data = url[5:].split(";base64,", 1)
    return head, data


def _arguments(raw: str) -> dict[str, Any]:
    """A tool call's arguments as an object (both APIs want one); malformed text is kept
    under `_raw` so the next turn still shows the model what it wrote."""
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return {"_raw": raw}
    return value if isinstance(value, dict) else {"_value": value}


# -- Anthropic Messages API ---------------------------------------------------------------


def anthropic_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for t in tools:
        fn = t.get("function", t)
        out.append(
            {
                "name": fn["name"],
                "description": fn.get("description", ""),
                "input_schema": fn.get("parameters") or {"type": "object", "properties": {}},
            }
        )
    return out


def _anthropic_content(content: Any) -> str | list[dict[str, Any]]:
    if not isinstance(content, list):
        return _text_of(content)
    blocks: list[dict[str, Any]] = []
    for part in content:
        if not isinstance(part, dict):
            continue
        if part.get("type") == "image_url" and (found := _data_url(part)):
            media, data = found
            blocks.append(
                {"type": "image", "source": {"type": "base64", "media_type": media, "data": data}}
            )
        else:
            blocks.append({"type": "text", "text": str(part.get("text", ""))})
    return blocks


def to_anthropic(messages: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """(system text, messages): system messages joined; tool results as `tool_result`
    blocks of a user turn; consecutive same-role turns merged (the API alternates)."""
    system: list[str] = []
    out: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})

    for m in messages:
        role = m.get("role")
        if role == "system":
            system.append(_text_of(m.get("content")))
        elif role == "tool":
            result = _anthropic_content(m.get("content"))
            add(
                "user",
                [{"type": "tool_result", "tool_use_id": m["tool_call_id"], "content": result}],
            )
        elif role == "assistant":
            blocks: list[dict[str, Any]] = []
            if text := _text_of(m.get("content")):
                blocks.append({"type": "text", "text": text})
            for call in m.get("tool_calls") or ():
                fn = call["function"]
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": call["id"],
                        "name": fn["name"],
                        "input": _arguments(fn.get("arguments", "")),
                    }
                )
            add("assistant", blocks or [{"type": "text", "text": ""}])
        else:
            content = _anthropic_content(m.get("content"))
            add(
                "user", [{"type": "text", "text": content}] if isinstance(content, str) else content
            )
    return "\n\n".join(s for s in system if s), out


# -- Gemini API -----------------------------------------------------------------------------


def gemini_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    declarations = []
    for t in tools:
        fn = t.get("function", t)
        declaration = {"name": fn["name"], "description": fn.get("description", "")}
        if fn.get("parameters"):
            # `parameters_json_schema` takes JSON Schema as it is (`parameters` is Gemini's
            # OpenAPI subset, which refuses e.g. `additionalProperties`).
            declaration["parameters_json_schema"] = fn["parameters"]
        declarations.append(declaration)
    return [{"function_declarations": declarations}] if declarations else []


def _gemini_parts(content: Any) -> list[dict[str, Any]]:
    if not isinstance(content, list):
        return [{"text": _text_of(content)}]
    parts: list[dict[str, Any]] = []
    for part in content:
        if not isinstance(part, dict):
            continue
        if part.get("type") == "image_url" and (found := _data_url(part)):
            media, data = found
            parts.append({"inline_data": {"mime_type": media, "data": base64.b64decode(data)}})
        else:
            parts.append({"text": str(part.get("text", ""))})
    return parts


def to_gemini(messages: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """(system instruction, contents): roles `user`/`model`; a tool result is a
    `function_response` part naming the function its call named."""
    system: list[str] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # call id -> function name

    def add(role: str, parts: list[dict[str, Any]]) -> None:
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})

    for m in messages:
        role = m.get("role")
        if role == "system":
            system.append(_text_of(m.get("content")))
        elif role == "tool":
            call_id = m["tool_call_id"]
            response = {"name": names.get(call_id, call_id), "id": call_id}
            response["response"] = {"result": _text_of(m.get("content"))}
            add("user", [{"function_response": response}])
        elif role == "assistant":
            parts: list[dict[str, Any]] = []
            if text := _text_of(m.get("content")):
                parts.append({"text": text})
            for call in m.get("tool_calls") or ():
                fn = call["function"]
                names[call["id"]] = fn["name"]
                args = _arguments(fn.get("arguments", ""))
                parts.append(
                    {"function_call": {"id": call["id"], "name": fn["name"], "args": args}}
                )
            add("model", parts or [{"text": ""}])
        else:
            add("user", _gemini_parts(m.get("content")))
    return "\n\n".join(s for s in system if s), contents
