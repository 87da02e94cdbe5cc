"""Bosun's A2A server, driven by the official `a2a-sdk` client over real HTTP on 127.0.0.1:
tasks are runs (send, stream, get, list, cancel), input-required turns resume the run, an
approval answered over A2A, a task that outlives its server, tenants, and keys."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from a2a.types import a2a_pb2 as pb
from a2a.utils.errors import (
    A2AError,
    TaskNotCancelableError,
    TaskNotFoundError,
    UnsupportedOperationError,
)
from a2a_helpers import send, start, text_message

from bosun.server.a2a.access import public_agents
from bosun.server.state import Settings

S = pb.TaskState


@pytest.fixture
def served(tmp_path):
    server, stop = start(str(tmp_path / "a2a.db"))
    yield server
    stop()


@pytest.fixture
def operator(served) -> str:
    return served.key("acme", "operator")


def _task(events: list[pb.StreamResponse]) -> pb.Task:
    assert len(events) == 1 and events[0].HasField("task"), events
    return events[0].task


async def _until(client, task_id: str, state: int, timeout: float = 20) -> pb.Task:
    loop = asyncio.get_running_loop()
    ends = loop.time() + timeout
    while True:
        task = await client.get_task(pb.GetTaskRequest(id=task_id))
        if task.status.state == state or loop.time() > ends:
            return task
        await asyncio.sleep(0.05)


async def test_agent_card_names_endpoints_version_and_the_key_it_needs(served):
    with httpx.Client(base_url=served.url) as http:
        card = http.get("/a2a/echo/.well-known/agent-card.json").json()
        opened = http.get("/a2a/open-echo/.well-known/agent-card.json").json()
        several = http.get("/.well-known/agent-card.json")
    assert card["version"] == "1"
    assert card["description"] == "Answer every question with a short greeting."
    bindings = {i["protocolBinding"]: i["url"] for i in card["supportedInterfaces"]}
    assert bindings == {
        "JSONRPC": f"{served.url}/a2a/echo",
        "HTTP+JSON": f"{served.url}/a2a/echo/rest",
    }
    assert card["capabilities"]["streaming"] is True
    assert card["capabilities"]["pushNotifications"] is True
    assert card["securitySchemes"]["bosunApiKey"]["httpAuthSecurityScheme"]["scheme"] == "Bearer"
    assert card["securityRequirements"] == [{"schemes": {"bosunApiKey": {}}}]
    assert [s["id"] for s in card["skills"]] == ["echo"]
    assert "securityRequirements" not in opened  # public: no key asked
    assert several.status_code == 404  # several agents: each card at its own path


async def test_send_completes_a_task_that_is_the_bosun_run(served, operator):
    client = await served.client("echo", operator)
    task = _task(await send(client, text_message("hi")))
    assert task.status.state == S.TASK_STATE_COMPLETED
    assert task.status.message.parts[0].text == "Hello from Bosun"
    assert [m.role for m in task.history] == [pb.Role.ROLE_USER, pb.Role.ROLE_AGENT]
    with httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {operator}"}) as http:
        run = http.get(f"/api/runs/{task.id}").json()
    assert run["status"] == "succeeded" and run["agent"] == "echo"
    assert run["session"] == task.context_id  # the context is the run's session
    await client.close()


async def test_a_resent_message_is_the_same_task_not_a_second_run(served, operator):
    client = await served.client("echo", operator)
    first = _task(await send(client, text_message("hi", message_id="m-1", context_id="c-1")))
    again = _task(await send(client, text_message("hi", message_id="m-1", context_id="c-1")))
    assert again.id == first.id
    listed = await client.list_tasks(pb.ListTasksRequest(context_id="c-1"))
    assert [t.id for t in listed.tasks] == [first.id]
    await client.close()


@pytest.mark.parametrize("binding", ["JSONRPC", "HTTP+JSON"])
async def test_stream_shows_the_task_then_its_updates_to_completed(served, operator, binding):
    client = await served.client("echo", operator, streaming=True, binding=binding)
    events = await send(client, text_message("hi"))
    assert events[0].HasField("task")
    states = [e.status_update.status.state for e in events if e.HasField("status_update")]
    assert states[-1] == S.TASK_STATE_COMPLETED
    assert S.TASK_STATE_WORKING in states
    await client.close()


async def test_get_and_list_see_the_task_with_history_length(served, operator):
    client = await served.client("echo", operator)
    task = _task(await send(client, text_message("hi", context_id="ctx-list")))
    got = await client.get_task(pb.GetTaskRequest(id=task.id, history_length=1))
    assert got.id == task.id and len(got.history) == 1
    listed = await client.list_tasks(pb.ListTasksRequest(context_id="ctx-list", page_size=10))
    assert [t.id for t in listed.tasks] == [task.id] and listed.total_size == 1
    with pytest.raises(TaskNotFoundError):
        await client.get_task(pb.GetTaskRequest(id="run_nope"))
    await client.close()


async def test_cancel_ends_the_run_and_a_second_cancel_is_refused(served, operator):
    client = await served.client("slow", operator)
    request = text_message("work")
    request.configuration.return_immediately = True
    task = _task(await send(client, request))
    assert task.status.state in (S.TASK_STATE_SUBMITTED, S.TASK_STATE_WORKING)
    canceled = await client.cancel_task(pb.CancelTaskRequest(id=task.id))
    assert canceled.status.state == S.TASK_STATE_CANCELED
    with pytest.raises(TaskNotCancelableError):
        await client.cancel_task(pb.CancelTaskRequest(id=task.id))
    await client.close()


async def test_input_required_then_a_follow_up_message_resumes_the_run(served, operator):
    client = await served.client("asker", operator)
    task = _task(await send(client, text_message("open an account")))
    assert task.status.state == S.TASK_STATE_INPUT_REQUIRED
    assert task.status.message.parts[0].text == "Which account?"
    follow = text_message("A-42", task_id=task.id, context_id=task.context_id)
    done = _task(await send(client, follow))
    assert done.status.state == S.TASK_STATE_COMPLETED
    users = [m.parts[0].text for m in done.history if m.role == pb.Role.ROLE_USER]
    assert users == ["open an account", "A-42"]
    # a finished task takes no more messages
    with pytest.raises(UnsupportedOperationError):
        await send(client, text_message("more", task_id=task.id))
    await client.close()


async def test_approval_is_input_required_and_answered_by_an_approver_only(served, operator):
    client = await served.client("payer", operator)
    task = _task(await send(client, text_message("pay A-1")))
    assert task.status.state == S.TASK_STATE_INPUT_REQUIRED
    with pytest.raises(A2AError, match="role"):  # an operator may not approve
        await send(client, text_message("approve", task_id=task.id))
    approver = await served.client("payer", served.key("acme", "approver"))
    done = _task(await send(approver, text_message("approve: fine", task_id=task.id)))
    assert done.status.state == S.TASK_STATE_COMPLETED
    assert done.status.message.parts[0].text == "Wired."
    await client.close()
    await approver.close()


async def test_a_task_outlives_its_server_and_resumes_after_a_restart(tmp_path):
    db = str(tmp_path / "restart.db")
    first, stop = start(db)
    key = first.key("acme", "operator")
    client = await first.client("asker", key)
    task = _task(await send(client, text_message("open an account")))
    await client.close()
    assert task.status.state == S.TASK_STATE_INPUT_REQUIRED
    stop()
    second, stop = start(db)
    try:
        client = await second.client("asker", key)
        again = await client.get_task(pb.GetTaskRequest(id=task.id))
        assert again.status.state == S.TASK_STATE_INPUT_REQUIRED
        done = _task(await send(client, text_message("A-7", task_id=task.id)))
        assert done.status.state == S.TASK_STATE_COMPLETED
        await client.close()
    finally:
        stop()


async def test_another_tenants_task_does_not_exist_for_you(served, operator):
    mine = await served.client("echo", operator)
    task = _task(await send(mine, text_message("hi", context_id="shared-ctx")))
    theirs = await served.client("echo", served.key("globex", "operator"))
    with pytest.raises(TaskNotFoundError):
        await theirs.get_task(pb.GetTaskRequest(id=task.id))
    with pytest.raises(TaskNotFoundError):
        await theirs.cancel_task(pb.CancelTaskRequest(id=task.id))
    listed = await theirs.list_tasks(pb.ListTasksRequest())
    assert list(listed.tasks) == []
    with pytest.raises(TaskNotFoundError):  # nor can it continue it
        await send(theirs, text_message("hi", task_id=task.id))
    await mine.close()
    await theirs.close()


async def test_no_key_is_refused_unless_the_agent_is_public(served):
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "SendMessage",
        "params": {"message": {"role": "ROLE_USER", "messageId": "m", "parts": [{"text": "hi"}]}},
    }
    headers = {"A2A-Version": "1.0"}
    with httpx.Client(base_url=served.url, timeout=20) as http:
        refused = http.post("/a2a/echo", json=body, headers=headers)
        bad_key = http.post(
            "/a2a/echo", json=body, headers={**headers, "Authorization": "Bearer nope"}
        )
        opened = http.post("/a2a/open-echo", json=body, headers=headers)
    assert refused.status_code == 401 and bad_key.status_code == 401
    assert opened.json()["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
    # The public agent's caller is an operator of its own tenant, nothing more.
    client = await served.client("open-echo", served.key("public", "viewer"))
    listed = await client.list_tasks(pb.ListTasksRequest())
    assert len(listed.tasks) == 1
    await client.close()


async def test_public_is_honoured_only_on_loopback_unless_told(served):
    state = served.app.state.bosun
    agents = state.agents
    assert public_agents(state, agents) == {"open-echo"}
    for host, anywhere, expected in [("0.0.0.0", False, set()), ("0.0.0.0", True, {"open-echo"}),
                                     ("::1", False, {"open-echo"})]:  # fmt: skip
        state.settings = Settings(db="x", host=host, a2a_public_anywhere=anywhere)
        assert public_agents(state, agents) == expected


async def test_a_0_3_client_gets_a_clear_version_error(served, operator):
    body = {"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": "x"}}
    with httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {operator}"}) as http:
        old = http.post("/a2a/echo", json=body, headers={"A2A-Version": "0.3"}).json()
    assert old["error"]["code"] == -32009 and "0.3" in old["error"]["message"]


async def test_a_body_not_declared_json_is_refused_on_both_bindings(served, operator):
    headers = {
        "Authorization": f"Bearer {operator}",
        "A2A-Version": "1.0",
        "Content-Type": "text/plain",
    }
    body = b'{"message": {"role": "ROLE_USER", "messageId": "m", "parts": [{"text": "hi"}]}}'
    with httpx.Client(base_url=served.url, headers=headers) as http:
        rpc = http.post("/a2a/echo", content=body).json()
        rest = http.post("/a2a/echo/rest/message:send", content=body)
        runs = http.get("/api/runs").json()["runs"]
    assert rpc["error"]["code"] == -32005
    assert rest.status_code == 415 and "text/plain" in rest.json()["error"]["message"]
    assert runs == []  # nothing was started


async def test_a_text_agent_refuses_parts_it_would_drop(served, operator):
    client = await served.client("echo", operator)
    request = text_message("see attached")
    request.message.parts.append(
        pb.Part(raw=b"%PDF", media_type="application/pdf", filename="a.pdf")
    )
    with pytest.raises(A2AError, match=r"not supported|text parts only"):
        await send(client, request)
    await client.close()
