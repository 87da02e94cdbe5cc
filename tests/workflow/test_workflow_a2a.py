"""`call: a2a` in a workflow: the task's message goes to a real A2A server (the a2a-sdk
reference server of tests/tools/a2a, in its own process) through Bosun's A2A client, as a
durable remote wait; the answer becomes the task's output. A card that serves no such
skill is refused when the workflow loads, naming what it serves."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "tools" / "a2a"))
from a2a_client_servers import TOKEN, RefServer

from bosun import Runtime, Worker
from bosun.errors import SpecError
from bosun.journal.events import ToolFinished, WaitRequested
from bosun.workflow import load_workflow

pytestmark = pytest.mark.slow  # the reference server is a process

FLOW = """\
document:
  dsl: '1.0.3'
  namespace: test
  name: ask-remote
  version: '0.1.0'
  metadata:
    bosun:
      a2a: {{token_env: REF_A2A_TOKEN, skill: {skill}}}
do:
  - ask:
      call: a2a
      with:
        method: message/send
        agentCard:
          endpoint: {url}
        parameters:
          message:
            parts:
              - kind: text
                text: ${{ "hello " + .name }}
"""


@pytest.fixture
def ref_server(tmp_path, monkeypatch):
    monkeypatch.setenv("REF_A2A_TOKEN", TOKEN)
    server = RefServer(tmp_path / "remote", token=TOKEN)
    server.start()
    yield server
    server.stop()


async def drive(rt: Runtime, run_id: str) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(Worker(rt, poll_interval=0.05).serve(stop))
    deadline = time.monotonic() + 60
    try:
        while (await rt.get_run(run_id)).status not in ("succeeded", "failed", "killed"):
            assert time.monotonic() < deadline and not task.done(), "the run did not end"
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await task


async def test_a_workflow_asks_a_remote_a2a_agent_through_a_durable_wait(tmp_path, ref_server):
    path = tmp_path / "flow.yaml"
    path.write_text(FLOW.format(url=ref_server.url, skill="echo"))
    workflow = load_workflow(str(path))
    async with Runtime(str(tmp_path / "bosun.db")) as rt:
        run_id = await rt.submit(workflow.agent, json.dumps({"name": "ada"}))
        await drive(rt, run_id)
        result = await rt.result(run_id)
        events = [e for _, e in await rt.events(run_id)]
    assert result.status == "succeeded", result.reason
    (wait,) = [e for e in events if isinstance(e, WaitRequested)]
    assert wait.wait_kind == "remote"  # no worker held while the remote task ran
    (finished,) = [e for e in events if isinstance(e, ToolFinished) and e.tool.startswith("a2a_")]
    assert finished.result["answer"] == "echo: hello ada" and not finished.trusted
    assert "echo: hello ada" in (result.output or "")
    assert ref_server.counts()["echo"] == 1  # sent once


def test_a_skill_the_card_does_not_serve_is_refused_when_the_workflow_loads(tmp_path, ref_server):
    path = tmp_path / "flow.yaml"
    path.write_text(FLOW.format(url=ref_server.url, skill="nosuch"))
    with pytest.raises(SpecError, match="no skill 'nosuch'"):
        load_workflow(str(path))
