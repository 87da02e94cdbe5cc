"""What a run does when an MCP server misbehaves for real: killed (SIGKILL) in the middle
of a call, hanging, rewriting a tool's description mid-run (a rug pull), adding tools,
answering 10 MB, or restarting under an HTTP connection."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
from mcp_servers import HttpFaultServer, fault_entry, write_agent

from bosun import Runtime, load_agent
from bosun.journal.events import ToolDefinitionChanged, ToolFailed, ToolFinished

pytestmark = pytest.mark.slow


def _agent(tmp_path: Path, turns: str, extra: str = "trusted: true", server: str = ""):
    body = f"""
name: faulty
tools:
{fault_entry(extra, server=server)}
limits: {{max_steps: 8}}
model:
  provider: scripted
  turns:
{turns}
"""
    return load_agent(write_agent(tmp_path, body))


async def _kill_when_started(fault_dir: Path, label: str) -> int:
    """SIGKILL the server once its `once` call has begun (it wrote its pid)."""
    marker = fault_dir / f"{label}.pid"
    while not marker.exists() or not marker.read_text():
        await asyncio.sleep(0.02)
    pid = int(marker.read_text())
    await asyncio.sleep(0.1)  # the call is in flight, waiting on the server
    os.kill(pid, signal.SIGKILL)
    return pid


ONCE = """\
    - tool_calls: [{name: once, arguments: {label: a}}]
    - content: done
"""


async def test_an_idempotent_call_cut_by_a_killed_server_is_sent_again_after_reconnecting(
    sqlite_path, tmp_path, fault_dir
):
    agent = _agent(tmp_path, ONCE, "trusted: true\nidempotent: [once]")
    async with Runtime(sqlite_path) as rt:
        killer = asyncio.create_task(_kill_when_started(fault_dir, "a"))
        result = await rt.run(agent, "do it")
        killed = await killer
        events = [e for _, e in await rt.events(result.run_id)]
        opens = rt.sources.opens
    assert result.status == "succeeded", result.reason
    [finished] = [e for e in events if isinstance(e, ToolFinished)]
    assert finished.result == {"result": "done a"}  # answered by the restarted server
    assert not [e for e in events if isinstance(e, ToolFailed)]
    assert opens == 2  # the first connection, and the one after the kill
    with pytest.raises(ProcessLookupError):
        os.kill(killed, 0)  # really gone


async def test_a_non_idempotent_call_cut_by_a_killed_server_parks_the_run(
    sqlite_path, tmp_path, fault_dir
):
    agent = _agent(tmp_path, ONCE)  # `once` is a write, not idempotent
    async with Runtime(sqlite_path) as rt:
        killer = asyncio.create_task(_kill_when_started(fault_dir, "a"))
        result = await rt.run(agent, "do it")
        await killer
        events = [e for _, e in await rt.events(result.run_id)]
    assert result.status == "needs_attention"
    assert "lost its source mid-call" in result.reason
    assert "neither reported as failed nor run again" in result.reason
    assert not [e for e in events if isinstance(e, ToolFinished | ToolFailed)]


async def test_a_hanging_server_is_a_timeout_the_model_sees_and_the_run_goes_on(
    sqlite_path, tmp_path, fault_dir
):
    turns = """\
    - tool_calls: [{name: hang, arguments: {}}]
    - tool_calls: [{name: echo, arguments: {text: still here}}]
    - content: done
"""
    agent = _agent(tmp_path, turns, "trusted: true\ntimeout: 1\nretry: {max_attempts: 1}")
    async with Runtime(sqlite_path) as rt:
        result = await rt.run(agent, "hang")
        events = [e for _, e in await rt.events(result.run_id)]
        opens = rt.sources.opens
    assert result.status == "succeeded", result.reason
    [failed] = [e for e in events if isinstance(e, ToolFailed)]
    assert (failed.tool, failed.error_type) == ("hang", "timeout")
    assert "timed out after 1" in failed.message
    [finished] = [e for e in events if isinstance(e, ToolFinished)]
    assert finished.result == {"result": "still here"}  # the same connection still works
    assert opens == 1


async def test_a_tool_rewritten_mid_run_is_reported_and_refused(sqlite_path, tmp_path, fault_dir):
    turns = """\
    - tool_calls: [{name: echo, arguments: {text: before}}]
    - tool_calls: [{name: rewrite, arguments: {}}]
    - tool_calls: [{name: echo, arguments: {text: after}}]
    - content: done
"""
    agent = _agent(tmp_path, turns)
    pinned = agent.pins["echo"].digest
    async with Runtime(sqlite_path) as rt:
        result = await rt.run(agent, "echo twice")
        events = [e for _, e in await rt.events(result.run_id)]
        audit = [r.entry for r in await rt.store.audit_records()]
    assert result.status == "succeeded", result.reason
    assert [(e.tool, e.result) for e in events if isinstance(e, ToolFinished)] == [
        ("echo", {"result": "before"}),
        ("rewrite", {"result": "rewritten"}),
    ]
    [refused] = [e for e in events if isinstance(e, ToolFailed)]
    assert (refused.tool, refused.error_type) == ("echo", "definition_changed")
    [changed] = [e for e in events if isinstance(e, ToolDefinitionChanged)]
    assert changed.pinned_digest == pinned and changed.live_digest not in (None, pinned)
    assert changed.source.startswith("mcp:fault#")
    assert [a.subject for a in audit if a.action == "tool_definition_changed"] == [result.run_id]


async def test_a_server_cannot_add_tools_to_a_running_agent(sqlite_path, tmp_path, fault_dir):
    turns = """\
    - tool_calls: [{name: add, arguments: {}}]
    - tool_calls: [{name: surprise, arguments: {}}]
    - content: done
"""
    agent = _agent(tmp_path, turns)
    async with Runtime(sqlite_path) as rt:
        result = await rt.run(agent, "add")
        events = [e for _, e in await rt.events(result.run_id)]
    assert result.status == "succeeded"
    [failed] = [e for e in events if isinstance(e, ToolFailed)]
    assert (failed.tool, failed.error_type) == ("surprise", "unknown_tool")
    assert not [e for e in events if isinstance(e, ToolDefinitionChanged)]  # its own are as pinned


async def test_a_10_mb_result_reaches_the_model_as_a_bounded_excerpt(
    sqlite_path, tmp_path, fault_dir
):
    turns = """\
    - tool_calls: [{name: big, arguments: {size: 10000000}}]
    - content: done
"""
    body_limit = 2000
    agent = _agent(
        tmp_path, turns, "trusted: true\nallow: [big]", server=f"max_result_chars: {body_limit}"
    )
    async with Runtime(sqlite_path) as rt:
        result = await rt.run(agent, "big")
        events = [e for _, e in await rt.events(result.run_id)]
    assert result.status == "succeeded", result.reason
    [finished] = [e for e in events if isinstance(e, ToolFinished)]
    text = finished.result
    assert isinstance(text, str) and len(text) < body_limit + 300
    assert text.startswith('{"result":"Ammm') and text.endswith('mmmZ"}')
    assert "characters cut here by Bosun" in text and "10,000,0" in text


@pytest.mark.parametrize("protocol", ["auto", "legacy"])
async def test_an_http_server_restarted_between_runs_is_reconnected_to(
    sqlite_path, tmp_path, fault_dir, protocol
):
    server = HttpFaultServer({"FAULT_DIR": str(fault_dir)})
    server.start()
    body = f"""
name: remote
tools:
  - mcp:
      name: remote
      url: {server.url}
      protocol: {protocol}
      reconnect_backoff: 0.2
      connect_attempts: 5
    trusted: true
    allow: [echo]
model:
  provider: scripted
  turns:
    - tool_calls: [{{name: echo, arguments: {{text: hello}}}}]
    - content: done
"""
    try:
        agent = load_agent(write_agent(tmp_path, body))
        async with Runtime(sqlite_path) as rt:
            first = await rt.run(agent, "one")
            server.stop()
            server.start()  # the same port, a new process: nothing of the old one remains
            second = await rt.run(agent, "two")
            events = [e for _, e in await rt.events(second.run_id)]
            opens = rt.sources.opens
    finally:
        server.stop()
    assert first.status == second.status == "succeeded", second.reason
    [finished] = [e for e in events if isinstance(e, ToolFinished)]
    assert finished.result == {"result": "hello"}
    assert not [e for e in events if isinstance(e, ToolFailed)]
    # 2026-07-28 is stateless: the same connection goes on. A 2025-era session died with
    # the server: the call was refused unread, and sent again on a new connection.
    assert opens == (1 if protocol == "auto" else 2)


async def test_a_rewrite_is_refused_on_a_2025_era_connection_too(sqlite_path, tmp_path, fault_dir):
    """Over the `initialize` handshake there is no listen stream: the server's
    `notifications/tools/list_changed` is what tells the client to re-list."""
    turns = """\
    - tool_calls: [{name: rewrite, arguments: {}}]
    - tool_calls: [{name: echo, arguments: {text: after}}]
    - content: done
"""
    agent = _agent(tmp_path, turns, server="protocol: legacy")
    async with Runtime(sqlite_path) as rt:
        result = await rt.run(agent, "rewrite, then echo")
        events = [e for _, e in await rt.events(result.run_id)]
        [opened] = rt.sources._open.values()
        negotiated = opened.source._conn.client.protocol_version
    assert negotiated.startswith("2025-")
    assert result.status == "succeeded", result.reason
    [refused] = [e for e in events if isinstance(e, ToolFailed)]
    assert (refused.tool, refused.error_type) == ("echo", "definition_changed")
    assert [e.tool for e in events if isinstance(e, ToolDefinitionChanged)] == ["echo"]


async def test_calls_errors_and_latency_are_counted_per_mcp_server(
    sqlite_path, tmp_path, fault_dir
):
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from bosun.observe.feed import Observer
    from bosun.observe.metrics import Metrics

    turns = """\
    - tool_calls: [{name: echo, arguments: {text: one}}]
    - tool_calls: [{name: hang, arguments: {}}]
    - tool_calls: [{name: echo, arguments: {text: two}}]
    - content: done
"""
    agent = _agent(tmp_path, turns, "trusted: true\ntimeout: 1\nretry: {max_attempts: 1}")
    async with Runtime(sqlite_path) as rt:
        metrics = Metrics(rt.store)
        observer = await Observer(rt.store, [metrics]).attach(rt)
        await rt.run(agent, "count")
        await observer.flush()
        await observer.close()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(generate_latest(metrics.registry).decode())
        for s in family.samples
    }

    def sample(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted({"kind": "mcp", "source": "fault", **labels}.items())))]

    assert sample("bosun_tool_source_calls_total", outcome="ok") == 2
    assert sample("bosun_tool_source_calls_total", outcome="error") == 1  # the timeout
    assert sample("bosun_tool_source_latency_seconds_count") == 3
