"""`tools: [agent:NAME]` in YAML agent files: how the name is resolved (an agent file beside
the listing one, or in its `agents/` folder), what an entry may declare, and the errors a
wrong entry gets (each naming the file, the line and the fix)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bosun import Runtime, SpecError, Worker, load_agent
from bosun.journal.events import ToolFinished

TOOLS = '''
from bosun import tool

@tool(effect="read", idempotent=True)
def lookup(order: str) -> dict:
    """Look an order up."""
    return {"order": order, "status": "delivered"}

@tool(effect="irreversible")
def refund(order: str) -> dict:
    """Refund an order."""
    return {"refunded": order}
'''

RESEARCHER = """
name: researcher
instructions: Find facts about orders.
model:
  provider: scripted
  turns:
    - tool_calls: [{name: lookup, arguments: {order: "1234"}}]
    - content: order 1234 was delivered
tools: [tools.py:lookup]
limits: {max_steps: 5}
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def lead(tools: str) -> str:
    return f"""
name: lead
model:
  provider: scripted
  turns:
    - tool_calls: [{{name: researcher, arguments: {{input: "Where is 1234?"}}}}]
    - content: It was delivered.
tools:
{tools}
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write(tmp_path, "tools.py", TOOLS)
    write(tmp_path, "researcher.yaml", RESEARCHER)
    return tmp_path


async def test_an_agent_file_lists_another_and_runs_it_as_a_child(folder, db_url):
    path = write(folder, "lead.yaml", lead("  - agent:researcher"))
    agent = load_agent(str(path))
    tool = agent.tool_map["researcher"]
    assert tool.source.kind == "agent" and tool.effect == "read" and tool.idempotent
    async with Runtime(db_url) as rt:
        run_id = await rt.submit(agent, "Where is my order?")
        await Worker(rt, poll_interval=0.01).serve(exit_when_idle=True)
        result = await rt.result(run_id)
        [answer] = [e for _, e in await rt.events(run_id) if isinstance(e, ToolFinished)]
    assert result.status == "succeeded" and result.output == "It was delivered."
    assert answer.result["answer"] == "order 1234 was delivered"


def test_names_resolve_beside_the_file_then_in_agents_and_paths_are_relative(folder):
    write(folder, "agents/tools.py", TOOLS)
    write(folder, "agents/checker.yaml", RESEARCHER.replace("researcher", "checker"))
    path = write(folder, "lead.yaml", lead("  - agent:agents/checker.yaml\n  - agent:researcher"))
    assert set(load_agent(str(path)).tool_map) == {"checker", "researcher"}
    (folder / "researcher.yaml").rename(folder / "agents" / "researcher.yaml")
    full = """
  - agent: researcher
    name: ask_research
    description: Ask the research team.
    context: conversation
    effect: write
    limits: {max_steps: 3}
"""
    agent = load_agent(str(write(folder, "lead.yaml", lead(full))))
    tool = agent.tool_map["ask_research"]
    assert (tool.description, tool.effect) == ("Ask the research team.", "write")
    assert tool.source.config["context"] == "conversation"
    assert tool.source.config["limits"] == {"max_steps": 3}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            "  - agent:nobody",
            r"line 9: `tools\[0\]`: `agent: nobody`: no agent file found \(tried ",
        ),
        (
            "  - {agent: researcher, effect: read}\n  - agent: researcher\n    timeout: 3",
            r"`timeout` is not for `agent` entries",
        ),
        (
            "  - {ref: tools.py:lookup, context: conversation}",
            r"`context` is for `agent` entries",
        ),
        (
            "  - {agent: researcher, context: memory}",
            r"`context` must be one of input, conversation",
        ),
    ],
)
def test_wrong_entries_say_what_to_fix(folder, entry, message):
    path = write(folder, "lead.yaml", lead(entry))
    with pytest.raises(SpecError, match=message):
        load_agent(str(path))


def test_a_declared_effect_weaker_than_the_childs_tools_is_refused(folder):
    write(
        folder,
        "clerk.yaml",
        RESEARCHER.replace("researcher", "clerk").replace("lookup]", "refund]"),
    )
    path = write(folder, "lead.yaml", lead("  - {agent: clerk, effect: write}"))
    with pytest.raises(
        SpecError, match=r"line 9: .*weaker than what the agent can do \(irreversible"
    ):
        load_agent(str(path))


def test_an_agent_that_lists_itself_is_refused(folder):
    path = write(folder, "loop.yaml", lead("  - agent:loop").replace("name: lead", "name: loop"))
    with pytest.raises(SpecError, match=r"lists itself among its tools \(loop.yaml -> loop.yaml\)"):
        load_agent(str(path))
