"""Issue 13, "Media by reference": a run's attachments and a tool's media reach an
OpenAI-compatible model as content parts (`image_url` with a `data:` URL, `input_audio`),
built at call time from the artifact store, while the journal holds only references.
The model is a real local HTTP server speaking the chat-completions wire format."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pngs import png

from bosun import Agent, Media, Runtime, tool
from bosun.journal.events import RunStarted, ToolFinished

FRAME = png(2, 2, (0, 200, 0))
CHART = png(3, 1, (0, 0, 255))
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(28)


class RecordingModel:
    """POST /v1/chat/completions: records each request, answers from a script."""

    def __init__(self, answers: list[dict[str, Any]]):
        self.requests: list[dict[str, Any]] = []
        model = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                model.requests.append(body)
                message = answers[min(len(model.requests), len(answers)) - 1]
                reply = json.dumps(
                    {
                        "id": "chatcmpl-1",
                        "object": "chat.completion",
                        "created": 1700000000,
                        "model": "vision",
                        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
                    }
                ).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def model(monkeypatch) -> Iterator[RecordingModel]:
    monkeypatch.setenv("VISION_KEY", "sk-test")
    call = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "chart", "arguments": "{}"}}
        ],
    }
    server = RecordingModel([call, {"role": "assistant", "content": "a green frame"}])
    yield server
    server.server.shutdown()
    server.server.server_close()


@tool(effect="read")
def chart() -> Media:
    """Draw the chart of the week."""
    return Media(CHART, "image/png", "chart.png")


def data_url(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


async def test_attachments_and_tool_media_reach_the_model_as_content_parts(db_url, model):
    agent = Agent(
        name="looker",
        model={
            "provider": "openai",
            "name": "vision",
            "base_url": model.url,
            "api_key_env": "VISION_KEY",
        },
        tools=[chart],
    )
    async with Runtime(db_url) as rt:
        result = await rt.run(
            agent,
            "What is in the frame?",
            attachments=[Media(FRAME, "image/png", "frame.png"), Media(WAV, "audio/wav")],
        )
        events = [e for _, e in await rt.events(result.run_id)]
    assert result.status == "succeeded", result.reason

    first, second = model.requests
    user = first["messages"][-1]
    assert user["role"] == "user"
    assert user["content"] == [
        {"type": "text", "text": "What is in the frame?"},
        {"type": "image_url", "image_url": {"url": data_url(FRAME)}},
        {
            "type": "input_audio",
            "input_audio": {"data": base64.b64encode(WAV).decode(), "format": "wav"},
        },
    ]
    # The tool's picture follows its tool message (which carries only text on this wire).
    tool_message, media = second["messages"][-2:]
    assert tool_message["role"] == "tool" and "media" not in tool_message
    assert media["role"] == "user"
    assert media["content"][1] == {"type": "image_url", "image_url": {"url": data_url(CHART)}}

    # The journal holds references only: no bytes, no base64.
    [started] = [e for e in events if isinstance(e, RunStarted)]
    assert [a["mime"] for a in started.attachments] == ["image/png", "audio/wav"]
    assert started.attachments[0]["bytes"] == len(FRAME) and "data" not in started.attachments[0]
    [finished] = [e for e in events if isinstance(e, ToolFinished)]
    assert (
        finished.result["artifact"].startswith("sha256:") and finished.result["name"] == "chart.png"
    )
    journal = json.dumps([e.__dict__ for e in events], default=str)
    assert base64.b64encode(FRAME).decode() not in journal
