"""Extraction across a worker SIGKILL: the worker dies while the extraction model holds its
request; another worker resumes the extraction run, and the fact is written once."""

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

REMEMBER = {
    "id": "call_1",
    "type": "function",
    "function": {
        "name": "remember",
        "arguments": json.dumps({"subject": "order:77", "attribute": "status", "value": "lost"}),
    },
}


class Model:
    """An OpenAI-compatible endpoint: the run's model answers; the extractor (its system
    prompt says `propose facts`) calls `remember` once, then says done. It holds the first
    extraction request open."""

    def __init__(self):
        self.holding = threading.Event()
        self.release = threading.Event()
        self.extractions = 0
        model = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                messages = body["messages"]
                message: dict[str, Any] = {"role": "assistant", "content": "order 77 is lost"}
                if "propose facts" in str(messages[0].get("content")):
                    model.extractions += 1
                    if not model.holding.is_set():
                        model.holding.set()
                        model.release.wait(DEADLINE * 2)
                        return
                    if messages[-1]["role"] == "tool":
                        message = {"role": "assistant", "content": "done"}
                    else:
                        message = {"role": "assistant", "content": None, "tool_calls": [REMEMBER]}
                data = json.dumps(
                    {
                        "id": "x",
                        "object": "chat.completion",
                        "created": 0,
                        "model": "m",
                        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
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
    served = Model()
    yield served
    served.close()


async def test_an_extraction_killed_mid_call_is_resumed_and_writes_its_fact_once(
    tmp_path, db_url, model
):
    spec = {
        "provider": "openai",
        "name": "m",
        "base_url": model.url,
        "api_key_env": "EXTRACT_UNUSED_KEY",
        "max_retries": 0,
        "timeout": DEADLINE * 2,
    }
    agent = Agent(name="desk", model=spec, memory={"scope": "tenant", "extract": {"model": spec}})
    env = worker_env(tmp_path / "effects")
    log = tmp_path / "workers.log"
    async with Runtime(db_url) as rt:
        run_id = await rt.submit(agent, "where is order 77?")
        worker = start_worker(db_url, env, log)
        try:
            await wait_until("the extraction to ask its model", model.holding.is_set, log)
            sigkill(worker)
        finally:
            if worker.poll() is None:
                worker.kill()
        (child,) = await rt.store.list_runs(tenant="default", parent_id=run_id, limit=10)
        await wait_for_lease_expiry(rt, child.id, log)
        second = start_worker(db_url, env, log, exit_when_idle=True)
        finish_worker(second, log)
        parent = await rt.result(run_id)
        extraction = await rt.result(child.id)
        children = await rt.store.list_runs(tenant="default", parent_id=run_id, limit=10)
        events = await rt.events(child.id)
        facts = await rt.memory.facts.listing("default")
    assert parent.status == "succeeded" and parent.output == "order 77 is lost"
    assert extraction.status == "succeeded" and len(children) == 1
    assert any(isinstance(e, RunResumed) for _, e in events)
    assert [(f.subject, f.attribute, f.value, f.source, f.run_id) for f in facts] == [
        ("order:77", "status", "lost", "extraction", child.id)
    ]
