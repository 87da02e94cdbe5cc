"""`bosun mcp serve` over stdio (the identity from the command line), and the refusals of
conformance-fixtures mode."""

from __future__ import annotations

import asyncio
import sys

import pytest
from mcp import Client, StdioServerParameters
from mcp_serve_helpers import agent_args, bosun, env

pytestmark = pytest.mark.slow


def stdio(db: str, *extra: str) -> Client:
    args = ["-m", "bosun", "mcp", "serve", "--db", db, "--stdio", *agent_args(), *extra]
    return Client(StdioServerParameters(command=sys.executable, args=args, env=env()))


async def test_stdio_runs_an_agent_as_the_identity_given_on_the_command_line(tmp_path):
    db = str(tmp_path / "bosun.db")
    async with stdio(db, "--tenant", "acme", "--role", "operator", "--name", "ana") as client:
        result = await client.call_tool("greeter", {"input": "hi"})
        listed = await client.call_tool("list_runs", {})
    assert result.content[0].text == "Hello from Bosun."
    [run] = listed.structured_content["runs"]
    assert run["run_id"] == result.structured_content["run_id"]
    assert run["tenant"] == "acme"


async def test_stdio_serves_only_what_the_command_line_role_may_call(tmp_path):
    async with stdio(str(tmp_path / "bosun.db"), "--role", "viewer") as client:
        names = {t.name for t in (await client.list_tools()).tools}
        refused = await client.call_tool("kill", {"scope": "global", "reason": "no"})
    assert names == {"list_runs", "show_run", "list_approvals"}
    assert refused.is_error
    assert "needs the operator, admin or platform role" in refused.content[0].text


def test_conformance_fixtures_refuse_to_bind_beyond_loopback(tmp_path):
    db = str(tmp_path / "bosun.db")
    wide = bosun("mcp", "serve", "--db", db, "--http", "1", "--host", "0.0.0.0",
                 "--conformance-fixtures")  # fmt: skip
    piped = bosun("mcp", "serve", "--db", db, "--conformance-fixtures")
    assert wide.returncode == 2
    assert "binds only to loopback" in wide.stderr
    assert piped.returncode == 2
    assert "add --http PORT" in piped.stderr


def test_an_agent_named_like_a_control_tool_is_refused_at_start(tmp_path):
    from mcp_serve_helpers import AGENTS

    done = bosun("mcp", "serve", "--db", str(tmp_path / "bosun.db"), "--http", "1",
                 "--agent", f"{AGENTS}:approve")  # fmt: skip
    assert done.returncode == 2
    assert "would be served as MCP tool 'approve'" in done.stderr


async def test_a_run_longer_than_answer_within_answers_with_its_id_and_status(tmp_path):
    from mcp_serve_helpers import AGENTS

    db = str(tmp_path / "bosun.db")
    extra = ("--agent", f"{AGENTS}:slowpoke", "--answer-within", "0.5")
    async with stdio(db, *extra) as client:
        early = await client.call_tool("slowpoke", {"input": "work"})
        run_id = early.structured_content["run_id"]
        for _ in range(300):
            shown = await client.call_tool("show_run", {"run_id": run_id, "calls": False})
            if shown.structured_content["run"]["status"] == "succeeded":
                break
            await asyncio.sleep(0.1)
    assert not early.is_error
    assert early.structured_content["status"] in ("queued", "running")
    assert f"follow it with show_run {run_id}" in early.content[0].text
    assert shown.structured_content["run"]["status"] == "succeeded"
