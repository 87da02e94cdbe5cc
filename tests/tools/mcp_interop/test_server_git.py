"""Bosun's MCP client against `mcp-server-git` from PyPI over stdio: a 2026-era server
(the `mcp` 2.x SDK's `MCPServer`, reached without a handshake), confined to a repository
the test makes. A run reads its status and its log; its annotations govern its tools when
the operator trusts it, and nothing when not."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from interop_servers import entry, git_server_command, write_agent

from bosun import Runtime, load_agent
from bosun.journal.events import ToolFinished
from bosun.spec.mcp import McpServer, source_spec
from bosun.tools.mcp import McpSource

pytestmark = pytest.mark.slow


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with one commit and one modified, uncommitted file."""
    folder = tmp_path / "repo"
    folder.mkdir()

    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.name=Ana", "-c", "user.email=ana@example.com", *args],
            cwd=folder,
            check=True,
            capture_output=True,
        )

    git("init", "-q", "-b", "main")
    (folder / "README.md").write_text("# notes\n")
    git("add", "README.md")
    git("commit", "-q", "-m", "Start the notes")
    (folder / "README.md").write_text("# notes\n\nA second line.\n")
    return folder


def _server(repo: Path) -> dict[str, object]:
    return {"name": "git", "command": git_server_command(), "args": ["--repository", str(repo)]}


async def test_a_2026_era_server_is_reached_without_a_handshake(repo):
    source = McpSource(source_spec(McpServer.model_validate(_server(repo)), False))
    await source.open()
    try:
        assert source._conn is not None
        assert source._conn.client.protocol_version == "2026-07-28"
        names = {d.name for d in await source.discover()}
    finally:
        await source.close()
    assert {"git_status", "git_log", "git_commit"} <= names


async def test_a_run_reads_the_status_and_the_log_of_a_repository(tmp_path, repo):
    turns = f"""
    - tool_calls: [{{name: git_status, arguments: {{repo_path: "{repo}"}}}}]
    - tool_calls: [{{name: git_log, arguments: {{repo_path: "{repo}", max_count: 5}}}}]
    - content: done
    """
    path = write_agent(
        tmp_path, "historian", entry(_server(repo), "effects: {git_status: read, git_log: read}"),
        turns,
    )  # fmt: skip
    agent = load_agent(path)
    async with Runtime(str(tmp_path / "bosun.db")) as rt:
        result = await rt.run(agent, "What changed?")
        events = [e for _, e in await rt.events(result.run_id)]
    assert result.status == "succeeded", result.reason
    status, log = [e for e in events if isinstance(e, ToolFinished)]
    assert status.tool == "git_status" and "README.md" in status.result
    assert "modified" in status.result
    assert log.tool == "git_log" and "Start the notes" in log.result
    assert not status.trusted  # not marked trusted: its output is untrusted content


def test_its_annotations_govern_its_tools_only_when_trusted(tmp_path, repo):
    trusted = load_agent(
        write_agent(tmp_path, "trusting", entry(_server(repo), "trusted: true"))
    ).tool_map
    assert trusted["git_status"].effect == "read" and trusted["git_log"].effect == "read"
    assert trusted["git_commit"].effect == "write" and not trusted["git_commit"].idempotent
    assert trusted["git_add"].effect == "write" and trusted["git_add"].idempotent
    assert trusted["git_reset"].effect == "irreversible"  # destructiveHint: true

    wary = load_agent(write_agent(tmp_path, "wary", entry(_server(repo)))).tool_map
    assert {t.effect for t in wary.values()} == {"irreversible"}
