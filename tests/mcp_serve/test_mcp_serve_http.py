"""`bosun mcp serve --http`, called by the MCP SDK's own client with Bosun API keys."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_serve_helpers import bosun

pytestmark = pytest.mark.slow

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "probe", "version": "1"},
    },
}
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@contextlib.asynccontextmanager
async def connect(url: str, key: str, mode: str = "auto") -> AsyncIterator[Client]:
    """The SDK's client; `mode="legacy"` speaks the 2025-11-25 `initialize` handshake."""
    async with (
        httpx2.AsyncClient(
            headers={"Authorization": f"Bearer {key}"}, timeout=httpx2.Timeout(10, read=60)
        ) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode) as client,
    ):
        yield client


async def tool_names(url: str, key: str) -> set[str]:
    async with connect(url, key) as client:
        return {t.name for t in (await client.list_tools()).tools}


async def test_agent_tool_runs_the_agent_and_answers_with_its_output(served):
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    async with connect(served.url, served.key("operator")) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert tools["greeter"].input_schema["required"] == ["input"]
        result = await client.call_tool("greeter", {"input": "hi"}, progress_callback=on_progress)
    assert not result.is_error
    assert result.content[0].text == "Hello from Bosun."
    assert result.structured_content["status"] == "succeeded"
    assert result.structured_content["run_id"].startswith("run_")
    assert progress, "progress notifications while the run went"


async def test_run_waiting_for_approval_answers_with_what_is_pending_then_finishes(served):
    async with connect(served.url, served.key("operator")) as client:
        result = await client.call_tool("refunder", {"input": "refund order 1234"})
    data = result.structured_content
    assert not result.is_error
    assert data["status"] == "waiting_approval"
    [pending] = data["pending_approvals"]
    assert pending["tool"] == "refund"
    assert pending["arguments"] == {"order": "1234"}
    assert pending["approval_id"] in result.content[0].text

    async with connect(served.url, served.key("approver")) as client:
        listed = await client.call_tool("list_approvals", {"run_id": data["run_id"]})
        assert [a["approval_id"] for a in listed.structured_content["approvals"]] == [
            pending["approval_id"]
        ]
        decided = await client.call_tool("approve", {"approval_id": pending["approval_id"]})
        assert decided.structured_content["status"] == "approved"
        for _ in range(200):
            shown = await client.call_tool("show_run", {"run_id": data["run_id"]})
            if shown.structured_content["run"]["status"] == "succeeded":
                break
            await asyncio.sleep(0.05)
    assert shown.structured_content["run"]["output"] == "Refunded order 1234."
    assert [c["tool"] for c in shown.structured_content["calls"]] == ["refund"]


async def test_control_tools_are_served_only_to_keys_whose_role_allows_them(served):
    reads = {"list_runs", "show_run", "list_approvals"}
    viewer = await tool_names(served.url, served.key("viewer"))
    operator = await tool_names(served.url, served.key("operator"))
    approver = await tool_names(served.url, served.key("approver"))
    admin = await tool_names(served.url, served.key("admin"))
    assert viewer == reads
    assert operator == reads | {"kill", "greeter", "refunder"}
    assert approver == reads | {"approve", "deny"}
    assert admin == reads | {"approve", "deny", "kill", "greeter", "refunder"}


async def test_a_tool_beyond_the_key_role_is_refused_with_the_role_it_needs(served):
    async with connect(served.url, served.key("viewer")) as client:
        refused = await client.call_tool("approve", {"approval_id": "apr_x"})
        started = await client.call_tool("greeter", {"input": "hi"})
    assert refused.is_error
    assert "needs the approver, admin or platform role" in refused.content[0].text
    assert started.is_error
    async with connect(served.url, served.key("operator")) as client:
        runs = await client.call_tool("list_runs", {"agent": "greeter"})
    assert all(r["agent"] == "greeter" for r in runs.structured_content["runs"])


async def test_another_tenants_run_is_not_found(served):
    async with connect(served.url, served.key("operator")) as client:
        mine = await client.call_tool("greeter", {"input": "hi"})
    run_id = mine.structured_content["run_id"]
    async with connect(served.url, served.key("operator", tenant="acme")) as client:
        shown = await client.call_tool("show_run", {"run_id": run_id})
        listed = await client.call_tool("list_runs", {})
    assert shown.is_error
    assert f"no run {run_id!r} in tenant acme" in shown.content[0].text
    assert listed.structured_content["runs"] == []


def test_a_request_without_a_valid_key_is_refused_with_401(served):
    missing = httpx.post(served.url, json=INITIALIZE, headers=ACCEPT)
    wrong = httpx.post(
        served.url,
        json=INITIALIZE,
        headers={**ACCEPT, "Authorization": "Bearer bosun_0123456789ab_notthesecretatall_really"},
    )
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert "bosun keys create" in missing.json()["error"]["message"]
    assert wrong.status_code == 401
    assert "unknown key 0123456789ab" in wrong.json()["error"]["message"]
    exported = bosun("audit", "export", "--db", served.db)
    assert exported.returncode == 0, exported.stderr
    failures = [json.loads(line) for line in exported.stdout.splitlines() if "auth_failed" in line]
    assert any(f["subject"] == "/mcp" and "unknown key" in str(f["data"]) for f in failures)
    assert "notthesecretatall" not in exported.stdout


def test_a_foreign_host_or_origin_is_refused_even_with_a_valid_key(served):
    auth = {**ACCEPT, "Authorization": f"Bearer {served.key('operator')}"}
    rebound = httpx.post(served.url, json=INITIALIZE, headers={**auth, "Host": "evil.example"})
    cross = httpx.post(
        served.url, json=INITIALIZE, headers={**auth, "Origin": "http://evil.example"}
    )
    fine = httpx.post(
        served.url, json=INITIALIZE, headers={**auth, "Origin": "http://localhost:3000"}
    )
    assert rebound.status_code == 421
    assert cross.status_code == 403
    assert fine.status_code == 200


async def test_deny_tells_the_run_and_it_goes_on_without_the_call(served):
    async with connect(served.url, served.key("operator")) as client:
        parked = await client.call_tool("refunder", {"input": "refund order 1234"})
    [pending] = parked.structured_content["pending_approvals"]
    run_id = parked.structured_content["run_id"]
    async with connect(served.url, served.key("approver")) as client:
        denied = await client.call_tool(
            "deny", {"approval_id": pending["approval_id"], "reason": "not this one"}
        )
        again = await client.call_tool(
            "deny", {"approval_id": pending["approval_id"], "reason": "x"}
        )
        for _ in range(200):
            shown = await client.call_tool("show_run", {"run_id": run_id})
            if shown.structured_content["run"]["status"] in ("succeeded", "failed"):
                break
            await asyncio.sleep(0.05)
    assert denied.structured_content["status"] == "denied"
    assert again.is_error  # decided once: a second decision is refused, not applied
    [call] = shown.structured_content["calls"]
    assert call["tool"] == "refund"
    assert call["outcome"] == "blocked"
    assert "not this one" in (call["approval"] or "")


async def test_kill_sets_the_tenant_switch_for_operators_and_refuses_global(served):
    async with connect(served.url, served.key("operator", tenant="stopco")) as client:
        mine = await client.call_tool("kill", {"scope": "tenant:stopco", "reason": "incident"})
        everyone = await client.call_tool("kill", {"scope": "global", "reason": "incident"})
        stopped = await client.call_tool("greeter", {"input": "hi"})
    assert mine.structured_content["scope"] == "tenant:stopco"
    assert everyone.is_error
    assert stopped.is_error
    assert stopped.structured_content["status"] == "killed"


async def test_a_2025_handshake_client_gets_the_same_tools_and_answers(served):
    async with connect(served.url, served.key("viewer"), mode="legacy") as client:
        assert client.protocol_version == "2025-11-25"
        viewer = {t.name for t in (await client.list_tools()).tools}
        refused = await client.call_tool("greeter", {"input": "hi"})
    async with connect(served.url, served.key("operator"), mode="legacy") as client:
        answer = await client.call_tool("greeter", {"input": "hi"})
    assert viewer == {"list_runs", "show_run", "list_approvals"}
    assert refused.is_error
    assert answer.content[0].text == "Hello from Bosun."
