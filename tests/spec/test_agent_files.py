"""Agents from YAML and Python; malformed files name the file, the line and the field."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bosun import Agent, load_agent, tool
from bosun.errors import SpecError

TOOLS = '''
from bosun import tool

@tool(effect="read", idempotent=True)
def lookup(order_id: str) -> dict:
    """Find an order."""
    return {"order_id": order_id}

def plain(x: int) -> int:
    return x
'''


def write(folder: Path, name: str, text: str) -> str:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_yaml_agent_loads_tools_relative_to_the_file(tmp_path):
    write(tmp_path, "tools.py", TOOLS)
    path = write(
        tmp_path,
        "agent.yaml",
        """
        name: support
        version: "2"
        instructions: Be brief.
        model: {provider: scripted, turns: [{content: hi}]}
        tools:
          - tools.py:lookup
          - ref: tools.py:plain
            effect: read
            idempotent: true
        limits: {max_steps: 7}
        """,
    )
    agent = load_agent(path)
    assert agent.name == "support" and agent.version == "2"
    assert agent.limits.max_steps == 7
    tools = agent.tool_map
    assert tools["lookup"].effect == "read"
    assert tools["plain"].effect == "read" and tools["plain"].idempotent
    assert tools["lookup"].schema()["function"]["parameters"]["required"] == ["order_id"]
    assert agent.version_id.startswith("support@2+")


@pytest.mark.parametrize(
    ("body", "line", "field", "hint"),
    [
        ("name: a\nlimits:\n  max_cost: ten\n", 3, "limits.max_cost", "valid number"),
        ("name: a\nlimits:\n  max_stepz: 3\n", 3, "limits.max_stepz", "did you mean `max_steps`"),
        (
            "name: a\nmodel:\n  provider: scripted\n  turns:\n    - contents: x\n",
            5,
            "model",
            "contents",
        ),
        ("name: a\ntools:\n  - not a ref\n", 3, "tools[0]", "string should match"),
        ("version: 1\n", 1, "name", "field required"),
        ("name: a\nlimits: [1, 2\n", 3, None, "invalid yaml"),
    ],
)
def test_malformed_yaml_names_file_line_and_field(tmp_path, body, line, field, hint):
    path = write(tmp_path, "bad.yaml", body)
    with pytest.raises(SpecError) as err:
        load_agent(path)
    message = str(err.value)
    assert f"agent file {path}, line {line}" in message
    if field:
        assert f"`{field}" in message
    assert hint in message.lower()


def test_yaml_tool_reference_that_does_not_exist(tmp_path):
    write(tmp_path, "tools.py", TOOLS)
    path = write(tmp_path, "agent.yaml", "name: a\ntools: [tools.py:nope]\n")
    with pytest.raises(SpecError, match=r"tools\[0\].*has no 'nope'"):
        load_agent(path)


def test_python_agent_file(tmp_path):
    path = write(
        tmp_path,
        "my_agent.py",
        """
        from bosun import Agent, tool

        @tool(effect="read")
        def ping() -> str:
            '''Ping.'''
            return "pong"

        agent = Agent(name="pinger", model="scripted", tools=[ping])
        """,
    )
    agent = load_agent(path)
    assert agent.name == "pinger"
    # The tool's reference points at the file, so another process can import it again.
    assert agent.tool_map["ping"].ref == f"{path}:ping"


def test_tool_schema_comes_from_type_hints_and_docstring():
    @tool(effect="write")
    def refund(order_id: str, amount: float, note: str | None = None) -> dict:
        """Refund an order."""
        return {}

    schema = refund.schema()["function"]
    assert schema["description"] == "Refund an order."
    assert schema["parameters"]["properties"]["amount"]["type"] == "number"
    assert schema["parameters"]["required"] == ["order_id", "amount"]


def test_bad_definitions_are_refused_with_a_clear_message():
    with pytest.raises(SpecError, match="effect must be one of"):
        tool(effect="dangerous")(lambda: None)
    with pytest.raises(SpecError, match="provider:name"):
        Agent(name="a", model="gpt-4o")
    with pytest.raises(SpecError, match="agent name"):
        Agent(name="has space")
