"""What registering an agent checks, for `bosun run` and `bosun submit` alike: that any worker,
started in any folder, can import its tools again; and that its policy's rules name tools it
has (a rule naming a missing tool never matches, which is worth a warning)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

import bosun
from bosun import Agent, Runtime, tool
from bosun.govern.policy import PolicyWarning

HELPERS = '''
from bosun import tool

@tool(effect="read", idempotent=True)
def lookup(order_id: str) -> dict:
    """Find an order."""
    return {"order_id": order_id, "status": "shipped"}
'''

AGENT_YAML = """
name: sibling
tools: [helpers:lookup]
model:
  provider: scripted
  turns:
    - tool_calls: [{name: lookup, arguments: {order_id: "1234"}}]
    - content: shipped
"""

FACTORY_AGENT = '''
from bosun import Agent, tool


def make_tools():
    @tool(effect="read")
    def lookup(order_id: str) -> str:
        """Find an order."""
        return "shipped"

    return [lookup]


agent = Agent(name="factory", model="scripted", tools=make_tools())
'''


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(bosun.__file__).parents[1])}
    return subprocess.run(
        [sys.executable, "-m", "bosun", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def folders(tmp_path: Path) -> tuple[Path, Path, str]:
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    return project, elsewhere, str(tmp_path / "bosun.db")


@pytest.mark.slow
async def test_a_worker_started_in_another_folder_imports_sibling_module_tools(tmp_path):
    project, elsewhere, db = folders(tmp_path)
    (project / "helpers.py").write_text(HELPERS)
    (project / "agent.yaml").write_text(AGENT_YAML)
    submitted = cli("submit", "agent.yaml", "-i", "where?", "--db", db, "--json", cwd=project)
    assert submitted.returncode == 0, submitted.stderr
    run_id = json.loads(submitted.stdout)["run_id"]

    worker = cli("worker", "--db", db, "--exit-when-idle", "--poll-interval", "0.1", cwd=elsewhere)
    assert worker.returncode == 0, worker.stdout + worker.stderr

    async with Runtime(db) as rt:
        result = await rt.result(run_id)
        spec = (await rt.get_run(run_id)).spec
    assert (result.status, result.output, result.tool_calls) == ("succeeded", "shipped", 1)
    assert spec["tools"][0]["ref"] == f"{project / 'helpers.py'}:lookup"


@pytest.mark.slow
async def test_submitting_an_agent_with_a_tool_made_inside_a_function_is_refused(tmp_path):
    project, _, db = folders(tmp_path)
    (project / "agent.py").write_text(FACTORY_AGENT)
    for command in ("submit", "run"):
        done = cli(command, "agent.py", "-i", "where?", "--db", db, cwd=project)
        assert done.returncode == 2 and "Traceback" not in done.stderr
        assert done.stderr.startswith(
            "error: agent factory: tool `lookup` is defined inside function `make_tools()`"
        )
        assert "define it at module level" in done.stderr
    async with Runtime(db) as rt:
        assert await rt.store.list_runs() == []  # nothing queued to park later


@tool(effect="irreversible")
def refund(order_id: str, amount: float) -> str:
    """Refund an order."""
    return "refunded"


@tool(effect="write")
def send_reply(text: str) -> str:
    """Answer the customer."""
    return "sent"


async def test_policy_rules_naming_tools_the_agent_lacks_warn_once_at_registration(tmp_path):
    policy = {
        "name": "support",
        "rules": [
            {"name": "big-refunds", "tools": ["refnd"], "effect": "require_approval"},
            {"name": "no-emails", "tools": ["email_*"], "effect": "deny"},
            {"name": "billing-only", "agents": ["billing"], "tools": ["charge"], "effect": "deny"},
            {"name": "replies", "tools": ["send_*", "refund"], "effect": "notify"},
        ],
    }
    agent = Agent(name="support", model="scripted", tools=[refund, send_reply], policy=policy)
    async with Runtime(str(tmp_path / "bosun.db")) as rt:
        with pytest.warns(PolicyWarning) as caught:
            await rt.submit(agent, "hi")
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the same version registered again: no repeat
            await rt.submit(agent, "again")
    assert [str(w.message) for w in caught] == [
        "policy support: rule 'big-refunds' names tool 'refnd', which agent 'support' does "
        "not have, so it never matches; did you mean `refund`?",
        "policy support: rule 'no-emails' has the pattern 'email_*', which matches none of "
        "the tools of agent 'support' (refund, send_reply)",
    ]


def test_policy_warnings_ignore_rules_for_other_agents():
    from bosun.govern.policy import Policy

    policy = Policy.from_dict(
        {"rules": [{"name": "r", "agents": ["billing"], "tools": ["charge"], "effect": "deny"}]}
    )
    assert policy.unknown_tools("support", {"refund"}) == []
    assert policy.unknown_tools("billing", {"refund"}) != []


async def test_agent_files_warn_too(tmp_path):
    (tmp_path / "tools.py").write_text(HELPERS)
    (tmp_path / "agent.yaml").write_text(
        textwrap.dedent(
            """
            name: a
            model: scripted
            tools: [tools.py:lookup]
            policy: {rules: [{name: r, tools: [lookups], effect: deny}]}
            """
        )
    )
    agent = bosun.load_agent(str(tmp_path / "agent.yaml"))
    async with Runtime(str(tmp_path / "bosun.db")) as rt:
        with pytest.warns(PolicyWarning, match="did you mean `lookup`"):
            rt.register(agent)
