"""What the model sees of MCP results, and how annotations become effects; built from the
SDK's own result types (what a server sends), no server needed."""

from __future__ import annotations

import pytest
from mcp.types import AudioContent, CallToolResult, ImageContent, TextContent

from bosun.spec.definition import SourceSpec, ToolDefinition
from bosun.spec.mcp import declared_effect
from bosun.spec.media import Excerpt, Media
from bosun.spec.sourced import SourcedTool, sourced_tool
from bosun.spec.tool import RetryPolicy
from bosun.spec.vocab import Effect
from bosun.tools.mcp.results import McpToolError, excerpt, result_of


@pytest.mark.parametrize(
    ("annotations", "trusted", "expected"),
    [
        ({"readOnlyHint": True}, True, ("read", False)),
        ({"readOnlyHint": True, "idempotentHint": True}, True, ("read", True)),
        ({"readOnlyHint": False, "destructiveHint": False}, True, ("write", False)),
        ({"readOnlyHint": False}, True, ("irreversible", False)),  # destructive by default
        ({}, True, ("irreversible", False)),
        ({"readOnlyHint": True, "idempotentHint": True}, False, ("irreversible", False)),
        ({"destructiveHint": False}, False, ("irreversible", False)),
    ],
)
def test_annotations_map_to_effects_only_for_trusted_servers(annotations, trusted, expected):
    effect, idempotent = declared_effect(annotations, trusted)
    assert (str(effect), idempotent) == expected


def test_structured_content_is_the_result():
    result = CallToolResult(
        content=[TextContent(type="text", text='{"a": 1}')], structured_content={"a": 1}
    )
    assert result_of(result, 1000) == {"a": 1}


def test_one_text_is_a_string_and_media_stay_content_parts():
    assert result_of(CallToolResult(content=[TextContent(type="text", text="hi")]), 100) == "hi"
    parts = result_of(
        CallToolResult(
            content=[
                TextContent(type="text", text="a chart"),
                ImageContent(type="image", data="iVBORw0KGgo=", mime_type="image/png"),
                AudioContent(type="audio", data="UklGRlJJRkZSSUZG" * 5000, mime_type="audio/wav"),
            ]
        ),
        1000,
    )
    # Media are bytes for the artifact store (journaled by reference), however large.
    assert parts[0] == {"type": "text", "text": "a chart"}
    assert parts[1] == Media(b"\x89PNG\r\n\x1a\n", "image/png")
    assert parts[2] == Media(b"RIFF" * 15000, "audio/wav")


def test_a_long_result_is_an_excerpt_for_the_model_and_kept_whole():
    text = "H" * 5000 + "T" * 5000
    kept = result_of(CallToolResult(content=[TextContent(type="text", text=text)]), 1000)
    assert isinstance(kept, Excerpt)
    assert kept.shown == excerpt(text, 1000) and kept.full == text.encode()


def test_an_error_result_is_a_tool_error_with_the_servers_text():
    with pytest.raises(McpToolError, match="no such zone"):
        result_of(
            CallToolResult(content=[TextContent(type="text", text="no such zone")], is_error=True),
            100,
        )


def test_a_long_text_keeps_its_head_and_tail_and_says_what_was_cut():
    text = "H" * 5000 + "T" * 5000
    cut = excerpt(text, 1000)
    assert cut.startswith("H" * 750) and cut.endswith("T" * 250)
    assert "9,000 of 10,000 characters cut here by Bosun" in cut
    assert excerpt("short", 1000) == "short"


def _served(parameters: dict) -> SourcedTool:
    definition = ToolDefinition("t", "a tool", parameters, source_kind="mcp", source_id="s#1")
    return sourced_tool(
        definition,
        SourceSpec("mcp", "s#1"),
        name="t",
        effect=Effect.READ,
        idempotent=False,
        timeout=5,
        retry=RetryPolicy(),
        trusted=False,
    )


def test_arguments_are_checked_against_the_served_schema_with_the_fields_named():
    tool = _served(
        {
            "type": "object",
            "properties": {"n": {"type": "integer"}, "zone": {"$ref": "#/$defs/zone"}},
            "required": ["n"],
            "$defs": {"zone": {"type": "string", "enum": ["UTC", "Europe/Lisbon"]}},
        }
    )
    assert tool.validate({"n": 1, "zone": "UTC"}) == {"n": 1, "zone": "UTC"}
    with pytest.raises(ValueError, match=r"n: 'one' is not of type 'integer'"):
        tool.validate({"n": "one"})
    with pytest.raises(ValueError, match=r"zone: 'Mars' is not one of"):
        tool.validate({"n": 1, "zone": "Mars"})


def test_a_schema_that_is_not_json_schema_leaves_the_arguments_to_the_server():
    tool = _served({"type": "object", "properties": {"n": {"type": "integr"}}})
    assert tool.validate({"n": "anything"}) == {"n": "anything"}
