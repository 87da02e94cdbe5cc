"""Tasks on PostgreSQL with many servers: the server that takes the message runs no worker,
another server's worker drives the run, and every server sees the same task."""

from __future__ import annotations

import pytest
from a2a.types import a2a_pb2 as pb
from a2a_helpers import send, start, text_message

S = pb.TaskState
pytestmark = pytest.mark.postgres


async def test_a_task_taken_by_one_server_is_driven_and_seen_by_another(pg_url):
    front, stop_front = start(pg_url, workers=False)
    back, stop_back = start(pg_url)
    try:
        key = front.key("acme", "operator")
        client = await front.client("asker", key)
        events = await send(client, text_message("open an account"))
        task = events[0].task
        assert task.status.state == S.TASK_STATE_INPUT_REQUIRED  # driven by back's worker
        other = await back.client("asker", key)
        seen = await other.get_task(pb.GetTaskRequest(id=task.id))
        assert seen.status.state == S.TASK_STATE_INPUT_REQUIRED
        done = (await send(other, text_message("A-9", task_id=task.id)))[0].task
        assert done.status.state == S.TASK_STATE_COMPLETED
        again = await client.get_task(pb.GetTaskRequest(id=task.id))
        assert again.status.state == S.TASK_STATE_COMPLETED
        await client.close()
        await other.close()
    finally:
        stop_back()
        stop_front()
