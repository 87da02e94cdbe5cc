"""A2A push notifications from Bosun's server, with the official `a2a-sdk` client and a
real webhook receiver on 127.0.0.1: signed deliveries of a task's states, retries, the
outbox surviving a SIGKILLed server, the SSRF rule, tenants, and the SDK's config calls."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from a2a.client import ClientConfig, create_client
from a2a.types import a2a_pb2 as pb
from a2a.utils.errors import A2AError, TaskNotFoundError
from a2a_helpers import AGENTS_FILE, send, start, text_message
from a2a_webhook import Webhook

from bosun.server.a2a import push

S = pb.TaskState
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def hook():
    receiver = Webhook()
    yield receiver
    receiver.close()


def _config(url: str, **fields) -> pb.TaskPushNotificationConfig:
    return pb.TaskPushNotificationConfig(url=url, **fields)


def _with_push(request: pb.SendMessageRequest, config: pb.TaskPushNotificationConfig):
    request.configuration.task_push_notification_config.CopyFrom(config)
    return request


def _states(received) -> list[str]:
    return [r.json["statusUpdate"]["status"]["state"] for r in received]


def _task_id(events) -> str:
    first = events[0]
    return first.task.id if first.HasField("task") else first.status_update.task_id


def _rows(db: str, task_id: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT state, status, attempts, last_error FROM a2a_push_deliveries"
            " WHERE task_id = ? ORDER BY created_at",
            (task_id,),
        ).fetchall()


async def test_a_webhook_gets_signed_deliveries_as_the_task_goes_submitted_working_completed(
    tmp_path, hook
):
    db = str(tmp_path / "a2a.db")
    # The server that takes the call runs no worker, so the task is `submitted` until a
    # second server (a worker, on the same database) drives it.
    front, stop_front = start(db, workers=False, a2a_push_allow_loopback=True)
    stop_back = None
    try:
        key = front.key("acme", "operator")
        client = await front.client("waiter", key)
        request = text_message("start")
        request.configuration.return_immediately = True
        config = _config(
            hook.url,
            token="per-config-secret",
            authentication=pb.AuthenticationInfo(scheme="Bearer", credentials="hook-cred"),
        )
        task_id = _task_id(await send(client, _with_push(request, config)))
        assert _states(hook.wait_for(lambda got: len(got) >= 1)) == ["TASK_STATE_SUBMITTED"]

        back, stop_back = start(db, admin_key=front.admin_key, a2a_push_allow_loopback=True)
        got = hook.wait_for(lambda got: len(got) >= 2)
        assert _states(got) == ["TASK_STATE_SUBMITTED", "TASK_STATE_WORKING"]
        with httpx.Client(base_url=back.url, headers={"Authorization": f"Bearer {key}"}) as c:
            assert c.post(f"/api/runs/{task_id}/signals/go", json={"go": True}).status_code < 300
        got = hook.wait_for(lambda got: len(got) >= 3)
    finally:
        if stop_back is not None:
            stop_back()
        stop_front()
    assert _states(got) == ["TASK_STATE_SUBMITTED", "TASK_STATE_WORKING", "TASK_STATE_COMPLETED"]
    for received in got:
        assert received.headers["authorization"] == "Bearer hook-cred"
        assert received.headers[push.TOKEN_HEADER.lower()] == "per-config-secret"
        assert received.headers["content-type"] == "application/a2a+json"
        signature = received.headers[push.SIGNATURE_HEADER.lower()]
        assert push.verify("per-config-secret", signature, received.body)
        assert not push.verify("another-secret", signature, received.body)
        assert not push.verify("per-config-secret", signature, received.body + b" ")
        assert received.json["statusUpdate"]["taskId"] == task_id
    final = got[-1].json["statusUpdate"]["status"]
    assert final["message"]["parts"][0]["text"] == "Done."
    assert [r[:2] for r in _rows(db, task_id)] == [
        ("TASK_STATE_SUBMITTED", "delivered"),
        ("TASK_STATE_WORKING", "delivered"),
        ("TASK_STATE_COMPLETED", "delivered"),
    ]


async def test_input_required_is_delivered_then_the_end_after_the_follow_up(tmp_path, hook):
    server, stop = start(str(tmp_path / "a2a.db"), a2a_push_allow_loopback=True)
    try:
        client = await server.client("asker", server.key("acme", "operator"))
        events = await send(client, _with_push(text_message("pay"), _config(hook.url)))
        task_id = _task_id(events)
        got = hook.wait_for(lambda got: "TASK_STATE_INPUT_REQUIRED" in _states(got))
        assert _states(got)[-1] == "TASK_STATE_INPUT_REQUIRED"
        await send(client, text_message("A-1", task_id=task_id))
        got = hook.wait_for(lambda got: "TASK_STATE_COMPLETED" in _states(got))
    finally:
        stop()
    states = _states(got)
    assert states[-1] == "TASK_STATE_COMPLETED"
    assert states.index("TASK_STATE_INPUT_REQUIRED") < states.index("TASK_STATE_COMPLETED")
    assert all(a != b for a, b in itertools.pairwise(states)), states  # changes only
    # No token given: Bosun made one (returned by Get), and signed with it.
    assert got[0].headers[push.TOKEN_HEADER.lower()]
    token = got[0].headers[push.TOKEN_HEADER.lower()]
    assert all(push.verify(token, r.headers["x-bosun-signature"], r.body) for r in got)


async def test_a_receiver_that_fails_twice_gets_the_delivery_on_the_third_try(tmp_path):
    hook = Webhook(fail_first=2)
    db = str(tmp_path / "a2a.db")
    server, stop = start(db, a2a_push_allow_loopback=True, a2a_push_backoff=0.05)
    try:
        client = await server.client("echo", server.key("acme", "operator"))
        task_id = _task_id(await send(client, text_message("hi")))
        await client.create_task_push_notification_config(
            _config(hook.url, task_id=task_id, id="c1")
        )
        got = hook.wait_for(lambda got: len(got) >= 1)
    finally:
        stop()
        hook.close()
    assert [r.status for r in hook.requests] == [500, 500, 200]
    assert _states(got) == ["TASK_STATE_COMPLETED"]
    assert _rows(db, task_id) == [("TASK_STATE_COMPLETED", "delivered", 3, "HTTP 500")]


async def test_a_webhook_that_never_answers_2xx_is_marked_failed_after_the_last_try(tmp_path):
    hook = Webhook(fail_first=100)
    db = str(tmp_path / "a2a.db")
    server, stop = start(
        db, a2a_push_allow_loopback=True, a2a_push_backoff=0.02, a2a_push_attempts=3
    )
    try:
        client = await server.client("echo", server.key("acme", "operator"))
        task_id = _task_id(await send(client, text_message("hi")))
        await client.create_task_push_notification_config(_config(hook.url, task_id=task_id))
        ends = time.monotonic() + 20
        while _rows(db, task_id)[0][1] == "pending" and time.monotonic() < ends:
            time.sleep(0.05)
        admin = {"Authorization": f"Bearer {server.admin_key}"}
        metrics = httpx.get(f"{server.url}/metrics", headers=admin).text
        reader = {"Authorization": f"Bearer {server.key('acme', 'viewer')}"}
        shown = httpx.get(f"{server.url}/api/runs/{task_id}/push-deliveries", headers=reader)
        shown = shown.json()
        stranger = {"Authorization": f"Bearer {server.key('globex', 'viewer')}"}
        other = httpx.get(f"{server.url}/api/runs/{task_id}/push-deliveries", headers=stranger)
    finally:
        stop()
        hook.close()
    assert _rows(db, task_id) == [("TASK_STATE_COMPLETED", "failed", 3, "HTTP 500")]
    assert len(hook.requests) == 3
    assert [(d["status"], d["attempts"], d["last_error"]) for d in shown] == [
        ("failed", 3, "HTTP 500")
    ]
    assert other.status_code == 404  # another tenant's run
    assert 'bosun_a2a_push_deliveries_total{outcome="failed"} 1.0' in metrics
    assert 'bosun_a2a_push_deliveries_total{outcome="retried"} 2.0' in metrics


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _serve(db: str, port: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    command = [
        sys.executable, "-m", "bosun", "serve", "--agent", f"{AGENTS_FILE}:open_echo",
        "--db", db, "--host", "127.0.0.1", "--port", str(port), "--a2a-push-allow-loopback",
    ]  # fmt: skip
    proc = subprocess.Popen(command, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    ends = time.monotonic() + 30
    while time.monotonic() < ends:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"bosun serve did not start: {log.read_text()}")


@pytest.mark.slow
async def test_a_change_recorded_before_the_server_is_sigkilled_is_delivered_after_restart(
    tmp_path,
):
    db = str(tmp_path / "a2a.db")
    hook_port = _free_port()  # nothing listens there yet: the first attempt fails
    port = _free_port()
    log = tmp_path / "serve.log"
    server = _serve(db, port, log)
    try:
        http = httpx.AsyncClient(timeout=30)
        client = await create_client(
            f"http://127.0.0.1:{port}/a2a/open-echo", client_config=ClientConfig(httpx_client=http)
        )
        task_id = _task_id(await send(client, text_message("hi")))
        url = f"http://127.0.0.1:{hook_port}/hook"
        await client.create_task_push_notification_config(_config(url, task_id=task_id, id="k"))
        ends = time.monotonic() + 20
        while not (_rows(db, task_id) and _rows(db, task_id)[0][3]):  # an attempt failed
            assert time.monotonic() < ends, _rows(db, task_id)
            time.sleep(0.05)
        await http.aclose()
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait(10)
    state, status, _attempts, error = _rows(db, task_id)[0]
    assert (state, status) == ("TASK_STATE_COMPLETED", "pending") and error
    hook = Webhook(port=hook_port)
    restarted = _serve(db, port, log)
    try:
        got = hook.wait_for(lambda got: len(got) >= 1)
    finally:
        restarted.terminate()
        restarted.wait(10)
        hook.close()
    assert _states(got) == ["TASK_STATE_COMPLETED"]
    assert got[0].json["statusUpdate"]["taskId"] == task_id
    assert _rows(db, task_id)[0][1] == "delivered"


async def test_loopback_and_private_webhooks_are_refused_without_the_flag(tmp_path, hook):
    db = str(tmp_path / "a2a.db")
    server, stop = start(db)
    try:
        client = await server.client("echo", server.key("acme", "operator"))
        task_id = _task_id(await send(client, text_message("hi")))
        for url in (hook.url, "http://localhost:9/x", "http://10.1.2.3/x", "ftp://example.com/x"):
            with pytest.raises(A2AError, match=r"refused|must be an http"):
                await client.create_task_push_notification_config(_config(url, task_id=task_id))
        # A send naming such a webhook starts nothing.
        with pytest.raises(A2AError, match="loopback"):
            await send(client, _with_push(text_message("hi", message_id="m-x"), _config(hook.url)))
        listed = await client.list_task_push_notification_configs(
            pb.ListTaskPushNotificationConfigsRequest(task_id=task_id)
        )
        assert list(listed.configs) == []
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 1
    finally:
        stop()
    assert hook.requests == []


async def test_another_tenants_push_configs_do_not_exist_for_you(tmp_path, hook):
    server, stop = start(str(tmp_path / "a2a.db"), a2a_push_allow_loopback=True)
    try:
        acme = await server.client("echo", server.key("acme", "operator"))
        globex = await server.client("echo", server.key("globex", "operator"))
        task_id = _task_id(await send(acme, text_message("hi")))
        await acme.create_task_push_notification_config(
            _config(hook.url, task_id=task_id, id="mine")
        )
        calls = [
            globex.get_task_push_notification_config(
                pb.GetTaskPushNotificationConfigRequest(task_id=task_id, id="mine")
            ),
            globex.list_task_push_notification_configs(
                pb.ListTaskPushNotificationConfigsRequest(task_id=task_id)
            ),
            globex.create_task_push_notification_config(
                _config(hook.url, task_id=task_id, id="theirs")
            ),
            globex.delete_task_push_notification_config(
                pb.DeleteTaskPushNotificationConfigRequest(task_id=task_id, id="mine")
            ),
        ]
        for call in calls:
            with pytest.raises(TaskNotFoundError):
                await call
        mine = await acme.list_task_push_notification_configs(
            pb.ListTaskPushNotificationConfigsRequest(task_id=task_id)
        )
    finally:
        stop()
    assert [c.id for c in mine.configs] == ["mine"]


@pytest.mark.parametrize("binding", ["JSONRPC", "HTTP+JSON"])
async def test_the_sdk_clients_push_config_calls_create_get_list_and_delete(
    tmp_path, hook, binding
):
    server, stop = start(str(tmp_path / "a2a.db"), a2a_push_allow_loopback=True)
    try:
        client = await server.client("echo", server.key("acme", "operator"), binding=binding)
        task_id = _task_id(await send(client, text_message("hi")))
        auth = pb.AuthenticationInfo(scheme="Bearer", credentials="c")
        made = await client.create_task_push_notification_config(
            _config(hook.url, task_id=task_id, id="one", token="t1", authentication=auth)
        )
        assert (made.id, made.task_id, made.url, made.token) == ("one", task_id, hook.url, "t1")
        second = await client.create_task_push_notification_config(
            _config(hook.url, task_id=task_id)
        )
        assert second.id and second.token  # an id and a signing token made for you
        got = await client.get_task_push_notification_config(
            pb.GetTaskPushNotificationConfigRequest(task_id=task_id, id="one")
        )
        assert got.authentication.credentials == "c"
        listed = await client.list_task_push_notification_configs(
            pb.ListTaskPushNotificationConfigsRequest(task_id=task_id)
        )
        assert sorted(c.id for c in listed.configs) == sorted(["one", second.id])
        for _ in range(2):  # deleting is idempotent
            await client.delete_task_push_notification_config(
                pb.DeleteTaskPushNotificationConfigRequest(task_id=task_id, id="one")
            )
        with pytest.raises(TaskNotFoundError):
            await client.get_task_push_notification_config(
                pb.GetTaskPushNotificationConfigRequest(task_id=task_id, id="one")
            )
        with pytest.raises(TaskNotFoundError):
            await client.create_task_push_notification_config(_config(hook.url, task_id="run_nope"))
    finally:
        stop()


@pytest.mark.postgres
async def test_two_servers_on_postgresql_deliver_each_change_once(pg_url, hook):
    front, stop_front = start(pg_url, workers=False, a2a_push_allow_loopback=True)
    back, stop_back = start(pg_url, admin_key=front.admin_key, a2a_push_allow_loopback=True)
    try:
        key = front.key("acme", "operator")
        client = await front.client("waiter", key)
        request = text_message("start")
        request.configuration.return_immediately = True
        task_id = _task_id(await send(client, _with_push(request, _config(hook.url, token="k"))))
        hook.wait_for(lambda got: "TASK_STATE_WORKING" in _states(got))
        with httpx.Client(base_url=back.url, headers={"Authorization": f"Bearer {key}"}) as c:
            assert c.post(f"/api/runs/{task_id}/signals/go", json={"go": True}).status_code < 300
        got = hook.wait_for(lambda got: "TASK_STATE_COMPLETED" in _states(got))
        time.sleep(1.0)  # two observation rounds of both servers: nothing more arrives
        got = hook.delivered()
    finally:
        stop_back()
        stop_front()
    states = _states(got)
    assert states[-1] == "TASK_STATE_COMPLETED"
    assert len(states) == len(set(states)), states  # each change once, from one server
    assert "TASK_STATE_WORKING" in states
    assert all(push.verify("k", r.headers["x-bosun-signature"], r.body) for r in got)


async def test_a_deleted_config_gets_nothing_more(tmp_path, hook):
    server, stop = start(str(tmp_path / "a2a.db"), a2a_push_allow_loopback=True)
    try:
        key = server.key("acme", "operator")
        client = await server.client("waiter", key)
        request = text_message("start")
        request.configuration.return_immediately = True
        task_id = _task_id(await send(client, _with_push(request, _config(hook.url, id="x"))))
        hook.wait_for(lambda got: "TASK_STATE_WORKING" in _states(got))
        await client.delete_task_push_notification_config(
            pb.DeleteTaskPushNotificationConfigRequest(task_id=task_id, id="x")
        )
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}) as c:
            assert c.post(f"/api/runs/{task_id}/signals/go", json={"go": True}).status_code < 300
        for _ in range(200):
            task = await client.get_task(pb.GetTaskRequest(id=task_id))
            if task.status.state == S.TASK_STATE_COMPLETED:
                break
            time.sleep(0.05)
        assert task.status.state == S.TASK_STATE_COMPLETED
        time.sleep(1.0)  # two observation rounds: a config still there would be sent the end
    finally:
        stop()
    assert "TASK_STATE_COMPLETED" not in _states(hook.delivered())


async def test_a_resent_message_with_its_webhook_is_one_config_and_no_repeated_delivery(
    tmp_path, hook
):
    server, stop = start(str(tmp_path / "a2a.db"), a2a_push_allow_loopback=True)
    try:
        client = await server.client("echo", server.key("acme", "operator"))
        message = text_message("hi", message_id="m-1", context_id="ctx-1")
        request = _with_push(message, _config(hook.url))
        first = _task_id(await send(client, request))
        hook.wait_for(lambda got: "TASK_STATE_COMPLETED" in _states(got))
        again = _task_id(await send(client, request))
        listed = await client.list_task_push_notification_configs(
            pb.ListTaskPushNotificationConfigsRequest(task_id=first)
        )
        time.sleep(1.0)  # two observation rounds: a replaced config would be sent again
    finally:
        stop()
    assert again == first
    assert [c.id for c in listed.configs] == ["message-m-1"]
    states = _states(hook.delivered())
    assert states[-1] == "TASK_STATE_COMPLETED" and len(states) == len(set(states)), states
