"""The client the MCP conformance suite drives in client mode: a Bosun run whose tools
come from the suite's scenario server, exactly as an agent file's `mcp:` entry gets them.

    node .../conformance/dist/index.js client --command "python bosun_client.py" \\
        --scenario tools_call

The suite starts a scenario server, then this script with its URL as the last argument,
the scenario's name in `MCP_CONFORMANCE_SCENARIO` and, for some scenarios, what to call in
`MCP_CONFORMANCE_CONTEXT` (`toolCalls`). The script:

1. takes the server's tools with `mcp_tools({"url": URL})`: Bosun's MCP tool source
   connects (2026-07-28 discovery when the server speaks it, else the `initialize`
   handshake), lists them, and pins their definitions;
2. runs an agent with those tools on a temporary SQLite file, its scripted model asking
   for each call in turn: the context's `toolCalls`, else every served tool with
   arguments made from its input schema (numbers 2, 3, ...; strings; booleans), or, for
   `json-schema-2020-12-preservation`, the focal tool's schema as Bosun pinned it;
3. prints each call's outcome and exits 0 when the run succeeded (a tool the model is
   told failed still lets the run succeed: that is Bosun's behaviour, and the scenario's
   checks judge what reached the wire).

A server with no tools to call (`request-metadata`) is listed and left. A bearer token,
when the scenario's context carries one, is passed the way an operator would: through
`bearer_token_env`. Nothing here speaks MCP itself: every request is Bosun's.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
import tempfile
from typing import Any

from bosun import Agent, Runtime, SpecError
from bosun.journal.events import ToolFailed, ToolFinished
from bosun.tools.mcp import mcp_tools

TOKEN_ENV = "BOSUN_CONFORMANCE_TOKEN"
SCHEMA_FOCAL, SCHEMA_ECHO = "json_schema_2020_12_tool", "json_schema_echo"


def example(schema: dict[str, Any], numbers: itertools.count) -> Any:
    """A value that fits a JSON schema's `type` (enough for the suite's tools)."""
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if "enum" in schema:
        return schema["enum"][0]
    if kind in ("number", "integer"):
        return next(numbers)
    if kind == "boolean":
        return True
    if kind == "object":
        return arguments_for(schema, numbers)
    if kind == "array":
        return []
    return "conformance"


def arguments_for(schema: dict[str, Any], numbers: itertools.count | None = None) -> dict:
    numbers = numbers or itertools.count(2)
    properties = schema.get("properties") or {}
    return {
        name: example(properties.get(name) or {}, numbers) for name in schema.get("required") or []
    }


def server_for(url: str, context: dict[str, Any]) -> dict[str, Any]:
    server: dict[str, Any] = {
        "name": "conformance",
        "url": url,
        "connect_attempts": 1,
        "connect_timeout": 120,  # a loaded machine: the suite's own --timeout bounds the run
    }
    token = context.get("access_token") or context.get("token")
    if token:
        os.environ[TOKEN_ENV] = token
        server["bearer_token_env"] = TOKEN_ENV
    return server


async def main(url: str) -> int:
    scenario = os.environ.get("MCP_CONFORMANCE_SCENARIO", "")
    context = json.loads(os.environ.get("MCP_CONFORMANCE_CONTEXT") or "{}")
    server = server_for(url, context)
    try:
        # `effects`: the operator's word that these calls need no approval here, so the
        # run sends each one (governance is Bosun's, not what the suite checks).
        tools = mcp_tools(server, effects={"*": "read"})
    except SpecError as exc:
        if "leave none of its tools" in str(exc):
            print(f"{scenario}: the server serves no tools; listed them and stopped")
            return 0
        print(f"{scenario}: {exc}", file=sys.stderr)
        return 1
    served = {t.definition().name: t.definition() for t in tools}
    by_served_name = {t.definition().name: t.name for t in tools}
    planned = context.get("toolCalls") or [
        {"name": name, "arguments": arguments_for(d.parameters)} for name, d in served.items()
    ]
    if scenario == "json-schema-2020-12-preservation" and SCHEMA_FOCAL in served:
        # The scenario asks for the focal tool's input schema back, as the client holds
        # it: Bosun's pinned definition, which must keep every keyword the server wrote.
        schema = served[SCHEMA_FOCAL].parameters
        planned = [{"name": SCHEMA_ECHO, "arguments": {"schema": schema}}]
    turns: list[dict[str, Any]] = [
        {
            "tool_calls": [
                {"name": by_served_name.get(c["name"], c["name"]), "arguments": c["arguments"]}
            ]
        }
        for c in planned
    ]
    turns.append({"content": "done"})
    agent = Agent(
        name="conformance-client",
        model={"provider": "scripted", "turns": turns},
        tools=tools,
        limits={"max_steps": len(turns) + 1, "max_tool_calls": len(planned) + 1},
    )
    with tempfile.TemporaryDirectory(prefix="bosun-conformance-") as folder:
        async with Runtime(os.path.join(folder, "bosun.db")) as rt:
            result = await rt.run(agent, f"conformance scenario {scenario}")
            for _, event in await rt.events(result.run_id):
                if isinstance(event, ToolFinished):
                    print(f"{event.tool}: {json.dumps(event.result)[:300]}")
                elif isinstance(event, ToolFailed):
                    print(f"{event.tool} failed ({event.error_type}): {event.message[:300]}")
    print(f"{scenario}: run {result.status}" + (f" ({result.reason})" if result.reason else ""))
    return 0 if result.status == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[-1])))
