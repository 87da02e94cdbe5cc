"""Bosun's MCP client against the reference TypeScript server, `server-everything` (npm,
pinned in package.json), over stdio and over Streamable HTTP: a 2025-era server, reached
through the `initialize` handshake. Its tools are listed, governed from their annotations,
and called by real runs with the scripted model; images stay image parts; a long-running
tool finishes within its timeout, or times out as a tool error on a connection that stays."""

from __future__ import annotations

import pytest
from interop_servers import entry, everything, write_agent

from bosun import Runtime, load_agent
from bosun.journal.events import ToolFailed, ToolFinished
from bosun.spec.mcp import McpServer, source_spec
from bosun.tools.mcp import McpSource

pytestmark = pytest.mark.slow


@pytest.fixture(params=["stdio", "http"])
def server(request) -> dict[str, object]:
    """The `mcp:` mapping of server-everything over each transport."""
    if request.param == "stdio":
        node, args = everything()
        return {"name": "everything", "command": node, "args": [*args, "stdio"]}
    return {"name": "everything", "url": request.getfixturevalue("everything_http").url}


async def _run(tmp_path, server, turns: str, *, extra: str = "trusted: true", db=None):
    agent = load_agent(write_agent(tmp_path, "everything", entry(server, extra), turns))
    async with Runtime(db or str(tmp_path / "bosun.db")) as rt:
        result = await rt.run(agent, "go")
        events = [e for _, e in await rt.events(result.run_id)]
    return result, events


async def test_a_2025_era_server_is_reached_by_the_initialize_handshake_and_lists_its_tools(
    server,
):
    source = McpSource(source_spec(McpServer.model_validate(server), True))
    await source.open()
    try:
        assert source._conn is not None
        assert source._conn.client.protocol_version == "2025-11-25"
        names = {d.name for d in await source.discover()}
    finally:
        await source.close()
    assert {"echo", "get-sum", "get-tiny-image", "trigger-long-running-operation"} <= names


def test_annotations_map_to_effects_only_for_a_trusted_server(tmp_path, server):
    trusted = load_agent(write_agent(tmp_path, "trusting", entry(server, "trusted: true"))).tool_map
    assert trusted["echo"].effect == "read" and trusted["echo"].idempotent  # readOnlyHint
    # readOnlyHint false, destructiveHint false: a write; idempotentHint decides retries.
    assert trusted["gzip-file-as-resource"].effect == "write"
    assert trusted["gzip-file-as-resource"].idempotent
    assert trusted["toggle-simulated-logging"].effect == "write"
    assert not trusted["toggle-simulated-logging"].idempotent

    wary = load_agent(write_agent(tmp_path, "wary", entry(server))).tool_map
    assert {t.effect for t in wary.values()} == {"irreversible"}  # hints loosen nothing
    assert not any(t.idempotent or t.trusted for t in wary.values())
    assert wary["echo"].definition().served["annotations"]["readOnlyHint"] is True


async def test_a_run_calls_echo_and_add_tools_of_the_reference_server(tmp_path, server):
    result, events = await _run(
        tmp_path,
        server,
        """
        - tool_calls: [{name: echo, arguments: {message: hello from bosun}}]
        - tool_calls: [{name: get-sum, arguments: {a: 2, b: 40}}]
        - content: done
        """,
    )
    assert result.status == "succeeded", result.reason
    echo, total = [e for e in events if isinstance(e, ToolFinished)]
    assert echo.tool == "echo" and echo.result == "Echo: hello from bosun"
    assert total.tool == "get-sum" and "42" in str(total.result)
    assert echo.trusted  # the operator marked the server trusted


async def test_an_image_result_stays_an_image_part(tmp_path, server):
    db = str(tmp_path / "bosun.db")
    result, events = await _run(
        tmp_path,
        server,
        """
        - tool_calls: [{name: get-tiny-image, arguments: {}}]
        - content: done
        """,
        db=db,
    )
    assert result.status == "succeeded", result.reason
    [finished] = [e for e in events if isinstance(e, ToolFinished)]
    parts = finished.result
    assert [p["type"] for p in parts] == ["text", "image", "text"]
    image = parts[1]  # a reference in the journal; the bytes are an artifact (docs/artifacts.md)
    assert image["mime"] == "image/png" and "data" not in image
    async with Runtime(db) as rt:
        found = await rt.store.artifact("default", image["artifact"])
    assert found is not None
    mime, data = found
    assert mime == "image/png" and data.startswith(b"\x89PNG")  # the bytes, not a caption


async def test_a_long_running_tool_finishes_within_its_timeout(tmp_path, server):
    result, events = await _run(
        tmp_path,
        server,
        """
        - tool_calls: [{name: trigger-long-running-operation, arguments: {duration: 1, steps: 4}}]
        - content: done
        """,
        extra="trusted: true\ntimeout: 30",
    )
    assert result.status == "succeeded", result.reason
    [finished] = [e for e in events if isinstance(e, ToolFinished)]
    assert finished.result.startswith("Long running operation completed")
    assert finished.duration_ms >= 1000


async def test_a_long_running_tool_past_its_timeout_is_a_tool_error_and_the_server_still_answers(
    tmp_path, server
):
    result, events = await _run(
        tmp_path,
        server,
        """
        - tool_calls: [{name: trigger-long-running-operation, arguments: {duration: 5, steps: 5}}]
        - tool_calls: [{name: echo, arguments: {message: still there}}]
        - content: done
        """,
        extra="trusted: true\ntimeout: 1",
    )
    assert result.status == "succeeded", result.reason
    [failed] = [e for e in events if isinstance(e, ToolFailed)]
    assert failed.tool == "trigger-long-running-operation" and failed.error_type == "timeout"
    [finished] = [e for e in events if isinstance(e, ToolFinished)]
    assert finished.result == "Echo: still there"
