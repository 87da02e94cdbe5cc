"""A session continued across a worker SIGKILL: the run that continues it is killed while
the model holds its request; another worker resumes it, and the model gets the same
conversation again (rebuilt from the journal, not from the dead worker's memory)."""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "recovery"))
from crashkit import (
    DEADLINE,
    finish_worker,
    sigkill,
    start_worker,
    wait_for_lease_expiry,
    wait_until,
    worker_env,
)

from bosun import Agent, Runtime
from bosun.journal.events import RunResumed

pytestmark = pytest.mark.slow


class SessionModel:
    """An OpenAI-compatible endpoint that answers "noted" and keeps each request's
    messages; it holds the first request whose last message is `hold` open."""

    def __init__(self, hold: str):
        self.requests: list[list[dict[str, Any]]] = []
        self.holding = threading.Event()
        self.release = threading.Event()
        model = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                first = not model.holding.is_set()
                model.requests.append(body["messages"])
                if body["messages"][-1]["content"] == hold and first:
                    model.holding.set()
                    model.release.wait(DEADLINE * 2)
                    return
                said = body["messages"][-1]["content"]
                answer = {"role": "assistant", "content": f"noted: {said}"}
                data = json.dumps(
                    {
                        "id": "x",
                        "object": "chat.completion",
                        "created": 0,
                        "model": "session-model",
                        "choices": [{"index": 0, "message": answer, "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 10, "completion_tokens": 2},
                    }
                ).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def model():
    served = SessionModel(hold="what did I order?")
    yield served
    served.close()


async def test_a_session_continued_across_a_worker_sigkill_sees_the_same_conversation(
    tmp_path, db_url, model
):
    agent = Agent(
        name="session-chat",
        model={
            "provider": "openai",
            "name": "session-model",
            "base_url": model.url,
            "api_key_env": "SESSION_UNUSED_KEY",
            "max_retries": 0,
            "timeout": DEADLINE * 2,
        },
    )
    env = worker_env(tmp_path / "effects")
    log = tmp_path / "workers.log"
    async with Runtime(db_url) as rt:
        first = await rt.run(agent, "I ordered a blue kettle", session="kitchen")
        assert first.output == "noted: I ordered a blue kettle"
        run_id = await rt.submit(agent, "what did I order?", session="kitchen")
        worker = start_worker(db_url, env, log)
        try:
            await wait_until("worker 1 to ask the model", model.holding.is_set, log)
            sigkill(worker)
        finally:
            if worker.poll() is None:
                worker.kill()
        await wait_for_lease_expiry(rt, run_id, log)
        second = start_worker(db_url, env, log, exit_when_idle=True)
        finish_worker(second, log)
        result = await rt.result(run_id)
        events = await rt.events(run_id)

    expected = [
        {"role": "user", "content": "I ordered a blue kettle"},
        {"role": "assistant", "content": "noted: I ordered a blue kettle"},
        {"role": "user", "content": "what did I order?"},
    ]
    held, resumed = model.requests[1], model.requests[2]
    assert held == expected and resumed == expected
    assert result.status == "succeeded" and result.output == "noted: what did I order?"
    assert any(isinstance(e, RunResumed) for _, e in events)
