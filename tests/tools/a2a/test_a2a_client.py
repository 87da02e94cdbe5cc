"""Bosun's A2A client against a reference A2A server written with the a2a-sdk's server
classes (real HTTP on 127.0.0.1, a process of its own): a remote agent's skills are
tools, each call waits durably for the remote task, followed by the worker's watcher."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from a2a_client_servers import TOKEN, RefServer

from bosun import Agent, Runtime
from bosun.engine.worker import Worker
from bosun.journal.codec import encode_event
from bosun.journal.events import (
    ToolDefinitionChanged,
    ToolFailed,
    ToolFinished,
    ToolProgress,
    ToolStarted,
    WaitRequested,
)
from bosun.models.base import ModelRequest, ModelResponse, ToolCall
from bosun.spec.loader import load_agent_yaml
from bosun.spec.vocab import RunStatus
from bosun.tools.a2a import A2aSource, a2a_tools
from bosun.tools.sources import register_source_kind

pytestmark = pytest.mark.slow  # every test starts the reference server's process
DEADLINE = 60.0


def agent_of(server: RefServer, token_env: str | None, *turns: dict[str, Any], **entry: Any):
    settings = {"card": server.url, "token_env": token_env, "poll_interval": 0.1, **entry}
    return Agent(
        name="caller",
        model={"provider": "scripted", "turns": list(turns)},
        tools=a2a_tools({k: v for k, v in settings.items() if v is not None}),
    )


def ask(skill: str, message: str) -> dict[str, Any]:
    return {"tool_calls": [{"name": skill, "arguments": {"message": message}}]}


DONE = {"content": "done"}


async def drive(rt: Runtime, run_id: str) -> None:
    """A worker in this process until the run has ended (it keeps going while the remote
    task it waits on runs: its watcher is busy)."""
    stop = asyncio.Event()
    worker = Worker(rt, poll_interval=0.05)
    task = asyncio.create_task(worker.serve(stop))
    deadline = time.monotonic() + DEADLINE
    try:
        while (await rt.get_run(run_id)).status not in (
            "succeeded",
            "failed",
            "cancelled",
            "killed",
            "limit_exceeded",
        ):
            assert time.monotonic() < deadline, f"run {run_id} did not end"
            assert not task.done(), task.exception()
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await task


def of(events, kind):
    return [e for _, e in events if isinstance(e, kind)]


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_a_remote_agent_answers_through_a_durable_wait(
    store, request, tmp_path, ref_server, token_env
):
    db = str(tmp_path / "bosun.db") if store == "sqlite" else request.getfixturevalue("pg_url")
    agent = agent_of(ref_server, token_env, ask("echo", "hello"), DONE)
    async with Runtime(db) as rt:
        run_id = await rt.submit(agent, "say hello remotely")
        await drive(rt, run_id)
        result = await rt.result(run_id)
        events = await rt.events(run_id)
    assert result.status == RunStatus.SUCCEEDED
    (wait,) = of(events, WaitRequested)
    assert wait.wait_kind == "remote" and wait.key.startswith("a2a:")
    (finished,) = of(events, ToolFinished)
    assert finished.result["answer"] == "echo: hello"
    assert finished.result["status"] == "completed" and not finished.trusted
    assert ref_server.counts()["echo"] == 1
    # The bearer token reached the server and nowhere else: not the journal, not the snapshot.
    assert ref_server.counts("refused") == {}
    journal = b"".join(encode_event(e) for _, e in events)
    assert TOKEN.encode() not in journal
    assert TOKEN not in json.dumps(agent.snapshot())


async def test_a_failed_remote_task_is_a_tool_failure_the_model_sees(
    tmp_path, ref_server, token_env
):
    agent = agent_of(ref_server, token_env, ask("fail", "the impossible"), DONE)
    async with Runtime(str(tmp_path / "b.db")) as rt:
        run_id = await rt.submit(agent, "try it")
        await drive(rt, run_id)
        events = await rt.events(run_id)
    (failed,) = of(events, ToolFailed)
    assert failed.error_type == "remote_failed"
    assert "cannot do the impossible" in failed.message
    assert (await_result := events[-1][1]).kind == "run_finished"
    assert await_result.status == RunStatus.SUCCEEDED  # the model was told, and went on


class AnswersQuestions:
    """A model that calls `ask`, then answers the remote agent's question on its task."""

    provider, model = "test", "answers-questions"

    async def complete(self, request: ModelRequest) -> ModelResponse:
        last = request.messages[-1]
        if last["role"] == "user":
            return ModelResponse(None, (ToolCall("c1", "ask", '{"message": "pay the bill"}'),))
        result = json.loads(last["content"])
        if result.get("status") == "input-required":
            answer = {"message": "ACME-7", "task_id": result["task_id"]}
            return ModelResponse(None, (ToolCall("c2", "ask", json.dumps(answer)),))
        return ModelResponse(f"the remote agent said: {result['answer']}")


async def test_input_required_is_a_result_the_model_answers_on_the_same_task(
    tmp_path, ref_server, token_env
):
    agent = agent_of(ref_server, token_env)
    async with Runtime(str(tmp_path / "b.db")) as rt:
        rt.register(agent, provider=AnswersQuestions())
        run_id = await rt.submit(agent, "pay it")
        await drive(rt, run_id)
        result = await rt.result(run_id)
        events = await rt.events(run_id)
    first, second = of(events, ToolFinished)
    assert first.result["status"] == "input-required"
    assert first.result["question"] == "which account?"
    assert second.result == {
        "status": "completed",
        "task_id": first.result["task_id"],
        "answer": "account ACME-7",
    }
    assert result.output == "the remote agent said: account ACME-7"
    assert ref_server.counts()["ask"] == 2  # the question's task, then its answer: one task


async def test_a_remote_server_restarted_mid_task_completes_the_same_task(
    tmp_path, ref_server, token_env
):
    ref_server.stop()
    ref_server.start(slow=2.0)
    agent = agent_of(ref_server, token_env, ask("slow", "report"), DONE)
    async with Runtime(str(tmp_path / "b.db")) as rt:
        run_id = await rt.submit(agent, "slowly")
        stop = asyncio.Event()
        worker = asyncio.create_task(Worker(rt, poll_interval=0.05).serve(stop))
        while not (await rt.store.remote_waits("a2a:")):
            await asyncio.sleep(0.05)
        ref_server.stop()  # mid-task: the watcher finds nobody for a while
        await asyncio.sleep(1.0)
        ref_server.start()
        deadline = time.monotonic() + DEADLINE
        while (await rt.get_run(run_id)).status != RunStatus.SUCCEEDED:
            assert time.monotonic() < deadline and not worker.done()
            await asyncio.sleep(0.05)
        stop.set()
        await worker
        events = await rt.events(run_id)
    (finished,) = of(events, ToolFinished)
    assert finished.result["answer"] == "slow done: report"
    assert ref_server.counts()["slow"] == 1  # never sent again
    assert len(of(events, ToolStarted)) == 1


async def parked_on_remote(rt: Runtime, run_id: str) -> str:
    """Drive until the run is parked on its remote task and a watcher holds it; its key."""
    deadline = time.monotonic() + DEADLINE
    while True:
        run = await rt.get_run(run_id)
        waits = [w for w in await rt.store.remote_waits("a2a:") if w.run_id == run_id]
        if run.status == RunStatus.WAITING and waits and (run.lease_owner or "").endswith("/a2a"):
            return waits[0].key
        assert time.monotonic() < deadline, f"run {run_id} never parked: {run.status}"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("how", ["cancel", "kill"])
async def test_cancel_or_kill_of_a_parked_run_cancels_the_remote_task(
    how, tmp_path, ref_server, token_env
):
    ref_server.stop()
    ref_server.start(slow=60.0)
    agent = agent_of(ref_server, token_env, ask("slow", "forever"), DONE)
    async with Runtime(str(tmp_path / "b.db")) as rt:
        run_id = await rt.submit(agent, "slowly")
        stop = asyncio.Event()
        worker = asyncio.create_task(Worker(rt, poll_interval=0.05).serve(stop))
        key = await parked_on_remote(rt, run_id)
        if how == "cancel":
            await rt.cancel(run_id)
        else:
            await rt.kill("agent:caller", reason="stop the remote work", by="test")
        deadline = time.monotonic() + DEADLINE
        while (await rt.get_run(run_id)).status not in ("cancelled", "killed"):
            assert time.monotonic() < deadline and not worker.done()
            await asyncio.sleep(0.05)
        stop.set()
        await worker
        status = (await rt.get_run(run_id)).status
    task_id = key.rsplit(":", 1)[1]
    assert status == ("cancelled" if how == "cancel" else "killed")
    assert ref_server.counts("cancels").get(task_id) == 1
    assert ref_server.task_state(task_id) == "TASK_STATE_CANCELED"


async def test_a_changed_agent_card_is_refused_until_registered_again(
    tmp_path, ref_server, token_env
):
    agent = agent_of(ref_server, token_env, ask("echo", "hello"), DONE)  # pins version 1.0.0
    ref_server.stop()
    ref_server.start(version="2.0.0")  # same skills, a new version of the remote agent
    async with Runtime(str(tmp_path / "b.db")) as rt:
        run_id = await rt.submit(agent, "say hello")
        await drive(rt, run_id)
        events = await rt.events(run_id)
    (failed,) = of(events, ToolFailed)
    assert failed.error_type == "definition_changed"
    assert of(events, ToolDefinitionChanged)
    assert ref_server.counts().get("echo") is None  # nothing was sent


async def test_a_missing_credential_sends_nothing_and_says_which_variable(
    tmp_path, ref_server, monkeypatch
):
    monkeypatch.delenv("REF_A2A_UNSET", raising=False)
    agent = agent_of(ref_server, "REF_A2A_UNSET", ask("echo", "hello"), DONE)
    async with Runtime(str(tmp_path / "b.db")) as rt:
        run_id = await rt.submit(agent, "say hello")
        await drive(rt, run_id)
        events = await rt.events(run_id)
    (failed,) = of(events, ToolFailed)
    assert failed.error_type == "source_unavailable"
    assert "REF_A2A_UNSET is not set" in failed.message
    assert ref_server.counts() == {} and ref_server.counts("refused") == {}


async def test_http_json_binding_and_progress_reports_are_journaled(tmp_path, token_env):
    server = RefServer(tmp_path / "remote", token=TOKEN, binding="HTTP+JSON", slow=1.5).start()
    try:
        agent = agent_of(server, token_env, ask("slow", "bit by bit"), DONE)
        async with Runtime(str(tmp_path / "b.db")) as rt:
            run_id = await rt.submit(agent, "slowly")
            await drive(rt, run_id)
            events = await rt.events(run_id)
    finally:
        server.stop()
    (finished,) = of(events, ToolFinished)
    assert finished.result["answer"] == "slow done: bit by bit"
    progress = of(events, ToolProgress)
    assert progress and progress[0].message.startswith(("started", "step"))
    assert len(progress) <= 2  # coalesced: at most one per 5 s (1.5 s of ~8 reports)


def test_yaml_a2a_entries_take_governance_from_the_operator(tmp_path, ref_server):
    path = tmp_path / "agent.yaml"
    path.write_text(
        f"""
name: support
model: {{provider: scripted, turns: [{{content: hi}}]}}
tools:
  - a2a: {ref_server.url}
    allow: [echo, slow]
    effect: read
    effects: {{slow: irreversible}}
    prefix: billing_
"""
    )
    agent = load_agent_yaml(str(path))
    tools = {t.name: t for t in agent.tools}
    assert set(tools) == {"billing_echo", "billing_slow"}  # of echo, fail, ask, slow, hello
    assert tools["billing_echo"].effect == "read" and tools["billing_slow"].effect == "irreversible"
    assert not tools["billing_echo"].idempotent and not tools["billing_echo"].trusted
    path.write_text(path.read_text().replace("allow: [echo, slow]", "allow: [ecko]"))
    with pytest.raises(Exception, match=r"no skill 'ecko'.*echo"):
        load_agent_yaml(str(path))


async def test_a_remote_agent_that_answers_with_a_message_needs_no_wait(
    tmp_path, ref_server, token_env
):
    agent = agent_of(ref_server, token_env, ask("hello", "Bosun"), DONE)
    async with Runtime(str(tmp_path / "b.db")) as rt:
        result = await rt.run(agent, "greet")  # in-process: nothing to wait for
        events = await rt.events(result.run_id)
    assert result.status == RunStatus.SUCCEEDED
    assert not of(events, WaitRequested)
    (finished,) = of(events, ToolFinished)
    assert finished.result == {"status": "completed", "answer": "hello, Bosun"}
    assert not finished.trusted


async def test_a_remote_task_past_its_timeout_fails_the_call_and_is_cancelled_there(
    tmp_path, ref_server, token_env
):
    ref_server.stop()
    ref_server.start(slow=60.0)
    agent = agent_of(ref_server, token_env, ask("slow", "too long"), DONE, task_timeout=1.0)
    async with Runtime(str(tmp_path / "b.db")) as rt:
        run_id = await rt.submit(agent, "slowly")
        await drive(rt, run_id)
        events = await rt.events(run_id)
        (wait,) = of(events, WaitRequested)
        task_id = wait.key.rsplit(":", 1)[1]
        deadline = time.monotonic() + DEADLINE  # the watcher cancels it once it sees it expired
        while ref_server.task_state(task_id) != "TASK_STATE_CANCELED":
            assert time.monotonic() < deadline, ref_server.task_state(task_id)
            await asyncio.sleep(0.05)
    (failed,) = of(events, ToolFailed)
    assert failed.error_type == "remote_timeout"
    assert ref_server.counts("cancels").get(task_id) == 1


class DiesAfterSending(A2aSource):
    """The a2a source, in a process that dies right after the remote agent took the
    message and before Bosun journaled the task's id (the narrowest crash window)."""

    async def invoke(self, name, arguments, call):
        await super().invoke(name, arguments, call)
        raise SimulatedCrash("the worker died between the send and the journal")


class SimulatedCrash(BaseException):
    """Not caught by the engine: nothing more is journaled, as if the process died."""


async def test_a_crash_between_the_send_and_the_journal_parks_instead_of_sending_again(
    tmp_path, ref_server, token_env
):
    agent = agent_of(ref_server, token_env, ask("echo", "once"), DONE)
    db = str(tmp_path / "b.db")
    register_source_kind("a2a", DiesAfterSending)
    try:
        async with Runtime(db) as rt:
            run_id = await rt.submit(agent, "go")
            with pytest.raises(SimulatedCrash):
                await rt.resume(run_id)
    finally:
        register_source_kind("a2a", A2aSource)
    async with Runtime(db) as rt:  # another worker, after the crash
        result = await rt.resume(run_id)
        events = await rt.events(run_id)
    assert result.status == RunStatus.NEEDS_ATTENTION
    assert "not idempotent" in result.reason
    assert not of(events, WaitRequested)
    assert ref_server.counts()["echo"] == 1  # sent once; a person decides, not a retry
