"""`call: a2a` through Bosun's A2A client layer (`bosun.tools.a2a`, docs/a2a.md).

An A2A call task names an agent (`with.agentCard.endpoint`, or `with.server`) and sends it
a message (`with.parameters.message.parts`, text parts; runtime expressions allowed). When
the workflow loads, the agent's card is fetched once and one of its skills becomes one of
the workflow's tools: a `SourcedTool` pinned with the card's definition (a changed card is
refused, as for agents), named `a2a_<digest of the endpoint and skill>` so the interpreter
and the loader agree on it without sharing state. The call is then what any A2A tool call
is: a durable wait on the remote task (no worker held, never sent twice), governed by its
effect (`write` unless `document.metadata.bosun.a2a.effect` says otherwise), its output
untrusted. `document.metadata.bosun.a2a` also takes `token_env` (the credential's variable)
and `skill` (when the card serves more than one). Only `method: message/send` is supported;
the task's output is the tool's result (`answer`, `status`, `task_id`), not the raw
JSON-RPC result.
"""

from __future__ import annotations

import hashlib
from typing import Any

from bosun.errors import SpecError
from bosun.spec.tool import Tool


def endpoint_of(given: dict[str, Any]) -> str:
    card = given.get("agentCard")
    if isinstance(card, dict):
        endpoint = card.get("endpoint")
        url = endpoint.get("uri") if isinstance(endpoint, dict) else endpoint
    else:
        server = given.get("server")
        url = server.get("uri") if isinstance(server, dict) else server
    if not isinstance(url, str) or not url:
        raise SpecError("`call: a2a` needs `with.agentCard.endpoint` or `with.server` (a URL)")
    return url


def tool_name(given: dict[str, Any], settings: dict[str, Any]) -> str:
    """The workflow's name for the tool this task calls (the loader and the interpreter)."""
    key = f"{endpoint_of(given)}#{settings.get('skill') or ''}"
    return "a2a_" + hashlib.sha256(key.encode()).hexdigest()[:12]


def message_text(parameters: dict[str, Any]) -> str:
    """The text of the message a task sends: its text parts, one per line."""
    message = parameters.get("message") or {}
    parts = message.get("parts") if isinstance(message, dict) else None
    texts = [
        str(p.get("text")) for p in parts or () if isinstance(p, dict) and p.get("text") is not None
    ]
    if not texts:
        raise SpecError("`call: a2a` sends `with.parameters.message.parts` with a text part")
    return "\n".join(texts)


def a2a_tool(given: dict[str, Any], settings: dict[str, Any]) -> Tool:
    """The tool an A2A call task calls, from the agent's card fetched now."""
    from dataclasses import replace

    from bosun.tools.a2a import a2a_tools

    if given.get("method") != "message/send":
        raise SpecError(
            f"`call: a2a` with `method: {given.get('method')}`: Bosun supports `message/send`"
        )
    entry: dict[str, Any] = {"card": endpoint_of(given)}
    if settings.get("token_env"):
        entry["token_env"] = settings["token_env"]
    tools = a2a_tools(entry, effect=settings.get("effect"), trusted=bool(settings.get("trusted")))
    skill = settings.get("skill")
    chosen = [t for t in tools if skill is None or t.name == skill]
    if len(chosen) != 1:
        served = ", ".join(t.name for t in tools) or "none"
        raise SpecError(
            f"`call: a2a` to {entry['card']}: name one skill in "
            f"`document.metadata.bosun.a2a.skill` (the card serves: {served})"
            if skill is None
            else f"`call: a2a` to {entry['card']}: no skill {skill!r} (served: {served})"
        )
    return replace(chosen[0], name=tool_name(given, settings))


__all__ = ["a2a_tool", "endpoint_of", "message_text", "tool_name"]
