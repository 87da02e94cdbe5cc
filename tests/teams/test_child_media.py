"""Issue 13, media in a child's answer: a child agent whose last tool result carries media
returns it to the parent's call as references (the journals hold references only), and the
parent's OpenAI-compatible model gets the pictures as content parts. The parent's model is
a real local HTTP server speaking the chat-completions wire format; the child is scripted."""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bosun import Agent, Media, Runtime, tool
from bosun.journal.events import ToolFinished

sys.path.insert(0, str(Path(__file__).parent.parent / "artifacts"))
from test_media_openai import RecordingModel  # the recording wire server

FRAME = b"\x89PNG\r\n\x1a\n" + b"frame-of-camera-7" * 4


@tool(effect="read")
def snapshot(camera: str) -> dict:
    """Take a picture with a camera."""
    return {"camera": camera, "frame": Media(FRAME, "image/png", "cam7.png")}


def camera() -> Agent:
    return Agent(
        name="camera",
        model={
            "provider": "scripted",
            "turns": [
                {"tool_calls": [{"name": "snapshot", "arguments": {"camera": "7"}}]},
                {"content": "camera 7: one person at the gate"},
            ],
        },
        tools=[snapshot],
    )


@pytest.fixture
def model(monkeypatch) -> Iterator[RecordingModel]:
    monkeypatch.setenv("VISION_KEY", "sk-test")
    call = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "camera", "arguments": '{"input": "look at camera 7"}'},
            }
        ],
    }
    server = RecordingModel([call, {"role": "assistant", "content": "someone is at the gate"}])
    yield server
    server.server.shutdown()
    server.server.server_close()


async def test_a_childs_media_reaches_the_parents_model_by_reference(db_url, model):
    parent = Agent(
        name="watch",
        model={
            "provider": "openai",
            "name": "vision",
            "base_url": model.url,
            "api_key_env": "VISION_KEY",
        },
        tools=[camera()],
    )
    async with Runtime(db_url) as rt:
        result = await rt.run(parent, "Who is at the gate?")
        events = [e for _, e in await rt.events(result.run_id)]
        [child] = await rt.store.list_runs(parent_id=result.run_id)
        child_events = [e for _, e in await rt.events(child.id)]
    assert result.status == "succeeded", result.reason
    assert result.output == "someone is at the gate"

    # The parent's call result: the child's answer and its picture, as a reference.
    [finished] = [e for e in events if isinstance(e, ToolFinished)]
    assert finished.result["answer"] == "camera 7: one person at the gate"
    assert finished.result["run_id"] == child.id
    [ref] = finished.result["media"]
    assert ref["artifact"].startswith("sha256:") and ref["name"] == "cam7.png"
    assert ref["bytes"] == len(FRAME) and "data" not in ref

    # The parent's model sees the picture as a content part after the tool message.
    _, second = model.requests
    tool_message, media = second["messages"][-2:]
    assert tool_message["role"] == "tool" and "media" not in tool_message
    url = "data:image/png;base64," + base64.b64encode(FRAME).decode()
    assert {"type": "image_url", "image_url": {"url": url}} in media["content"]

    # Neither journal holds the bytes.
    encoded = base64.b64encode(FRAME).decode()
    for journal in (events, child_events):
        assert encoded not in json.dumps([e.__dict__ for e in journal], default=str)


async def test_a_child_without_media_answers_as_before(db_url):
    plain = Agent(name="plain", model={"provider": "scripted", "turns": [{"content": "hi"}]})
    parent = Agent(
        name="asker",
        model={
            "provider": "scripted",
            "turns": [
                {"tool_calls": [{"name": "plain", "arguments": {"input": "greet"}}]},
                {"content": "done"},
            ],
        },
        tools=[plain],
    )
    async with Runtime(db_url) as rt:
        result = await rt.run(parent, "greet")
        events = [e for _, e in await rt.events(result.run_id)]
    [finished] = [e for e in events if isinstance(e, ToolFinished)]
    assert set(finished.result) == {"answer", "run_id"}
