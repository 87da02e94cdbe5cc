"""Sinks: tools declare where data goes, what they change and how much they move; MCP tools
get them from their schema's names; a pinned version keeps them."""

from __future__ import annotations

import textwrap

import pytest

from bosun import Agent, tool
from bosun.errors import SpecError
from bosun.spec.definition import SourceSpec, ToolDefinition
from bosun.spec.loader import load_agent_yaml
from bosun.spec.mcp import McpServer, agent_tools


def send_email(to: str, body: str) -> str:
    """Send an e-mail."""
    return to


def test_a_tool_declares_its_sinks_and_they_are_part_of_its_digest():
    plain = tool(effect="irreversible")(send_email)
    declared = tool(effect="irreversible", egress=("to",))(send_email)
    assert declared.sinks == {"to": "egress"}
    assert declared.definition().canonical()["sinks"] == {"egress": ["to"]}
    assert "sinks" not in plain.definition().canonical()  # older digests unchanged
    assert plain.definition().digest != declared.definition().digest


def test_a_sink_naming_no_argument_or_given_as_a_string_is_a_clear_error():
    with pytest.raises(SpecError, match="`egress` names argument 'recipient'"):
        tool(egress=("recipient",))(send_email)
    with pytest.raises(SpecError, match="list of argument names"):
        tool(egress="to")(send_email)  # type: ignore[arg-type]


def test_a_pinned_version_rebuilds_its_tools_with_their_sinks():
    agent = Agent(
        name="mailer",
        model="scripted",
        tools=[tool(effect="irreversible", egress=("to",), amounts=())(send_email)],
    )
    again = Agent.from_snapshot(agent.snapshot())
    assert again.tool_map["send_email"].sinks == {"to": "egress"}


def test_yaml_entries_set_sinks_for_python_tools(tmp_path):
    (tmp_path / "tools.py").write_text(
        textwrap.dedent(
            '''
            def delete_file(file_id: str) -> str:
                """Delete a file."""
                return file_id
            '''
        )
    )
    (tmp_path / "agent.yaml").write_text(
        textwrap.dedent(
            """
            name: files
            model: scripted
            tools:
              - ref: tools.py:delete_file
                effect: irreversible
                targets: [file_id]
            policy: {profile: strict}
            """
        )
    )
    agent = load_agent_yaml(str(tmp_path / "agent.yaml"))
    assert agent.tool_map["delete_file"].sinks == {"file_id": "target"}
    (tmp_path / "bad.yaml").write_text(
        "name: files\nmodel: scripted\ntools:\n  - ref: tools.py:delete_file\n    targets: [path]\n"
    )
    with pytest.raises(SpecError, match="'path'"):
        load_agent_yaml(str(tmp_path / "bad.yaml"))


def served(name: str, *props: str) -> ToolDefinition:
    schema = {"type": "object", "properties": {p: {"type": "string"} for p in props}}
    return ToolDefinition(name, "a served tool", schema, source_kind="mcp", source_id="s#1")


def mcp(definitions: list[ToolDefinition], **sinks) -> dict:
    server = McpServer(command="srv")
    tools = agent_tools(definitions, SourceSpec("mcp", "s#1"), server, sinks=sinks)
    return {t.name: t.sinks for t in tools}


def test_mcp_tools_get_sinks_from_their_schema_names():
    got = mcp(
        [
            served("send", "recipientEmail", "cc", "body"),
            served("fetch", "url"),
            served("remove", "file_id", "path"),
            served("transfer", "iban", "amount", "memo"),
            served("note", "title", "text"),
        ]
    )
    assert got == {
        "send": {"recipientEmail": "egress", "cc": "egress"},
        "fetch": {"url": "egress"},
        "remove": {"file_id": "target", "path": "target"},
        "transfer": {"iban": "egress", "amount": "amount"},
        "note": {},
    }


def test_the_operator_overrides_mcp_sinks_for_all_tools_or_by_glob():
    defs = [served("send", "to", "body"), served("post", "channel", "text")]
    assert mcp(defs, egress=[]) == {"send": {}, "post": {}}
    assert mcp(defs, egress={"post": ["text"]}) == {
        "send": {"to": "egress"},
        "post": {"text": "egress"},
    }
