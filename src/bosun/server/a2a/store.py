"""`BosunTaskStore`: the SDK's `TaskStore` interface over Bosun's own store. Tasks are
runs, so there is nothing to save: `get` and `list` project runs (their rows, redacted
journals and waits; `tasks.build_task`), scoped to the caller's tenant and to the agent
the endpoint serves; `save` and `delete` refuse (a run's truth is its journal, written by
the engine only)."""

from __future__ import annotations

import base64
from typing import Any

import orjson
from a2a.server.context import ServerCallContext
from a2a.server.tasks.task_store import TaskStore
from a2a.types import a2a_pb2 as pb
from a2a.utils.constants import DEFAULT_LIST_TASKS_PAGE_SIZE, MAX_LIST_TASKS_PAGE_SIZE
from a2a.utils.errors import InvalidParamsError, TaskNotFoundError, UnsupportedOperationError
from a2a.utils.task import apply_history_length
from fastapi import HTTPException

from bosun.server import ops
from bosun.server.a2a import tasks
from bosun.server.state import ServerState
from bosun.spec.a2a import A2ASettings
from bosun.spec.agent import Agent
from bosun.spec.vocab import RunStatus
from bosun.store.base import RunRecord

SCAN = 200  # rows read per query while filtering a listing


class BosunTaskStore(TaskStore):
    def __init__(self, state: ServerState, agent: Agent):
        self.state = state
        self.agent = agent
        self.mode = (agent.a2a or A2ASettings()).answer

    async def save(self, task: pb.Task, context: ServerCallContext) -> None:
        raise UnsupportedOperationError(message="tasks are Bosun runs: the engine writes them")

    async def delete(self, task_id: str, context: ServerCallContext) -> None:
        raise UnsupportedOperationError(message="tasks are Bosun runs: `bosun gc` removes them")

    async def run(self, task_id: str, context: ServerCallContext) -> RunRecord:
        """The caller's tenant's run of this agent, else `TaskNotFoundError`."""
        from bosun.server.a2a.handler import principal_of

        try:
            run = await ops.get_run(self.state, principal_of(context), task_id)
        except HTTPException:
            raise TaskNotFoundError(message=f"no task {task_id!r}") from None
        if run.agent != self.agent.name:
            raise TaskNotFoundError(message=f"no task {task_id!r} of agent {self.agent.name}")
        return run

    async def project(
        self, run: RunRecord, context: ServerCallContext, *, artifacts: bool = True
    ) -> pb.Task:
        from bosun.server.a2a.handler import principal_of

        shown, events = await ops.events(self.state, principal_of(context), run.id)
        waits = await self.state.runtime.store.waits(run.id)
        return tasks.build_task(shown, events, waits, self.mode, artifacts=artifacts)

    async def get(self, task_id: str, context: ServerCallContext) -> pb.Task | None:
        try:
            run = await self.run(task_id, context)
        except TaskNotFoundError:
            return None
        return await self.project(run, context)

    async def list(
        self, params: pb.ListTasksRequest, context: ServerCallContext
    ) -> pb.ListTasksResponse:
        """Newest first; the page token holds where the listing began (so runs created
        meanwhile do not shift it) and how many matching rows were passed."""
        from bosun.server.a2a.handler import principal_of

        p = principal_of(context)
        size = params.page_size or DEFAULT_LIST_TASKS_PAGE_SIZE
        if size < 1 or size > MAX_LIST_TASKS_PAGE_SIZE:
            raise InvalidParamsError(
                message=f"pageSize must be between 1 and {MAX_LIST_TASKS_PAGE_SIZE}, got {size}"
            )
        until, skip = _cursor(params.page_token)
        wanted = params.status if params.status != pb.TaskState.TASK_STATE_UNSPECIFIED else None
        after = (
            params.status_timestamp_after.ToNanoseconds() / 1e9
            if params.HasField("status_timestamp_after")
            else None
        )
        statuses = set(tasks.STATUSES_OF.get(wanted, ())) if wanted is not None else None
        tag = (tasks.TAG_CONTEXT, params.context_id) if params.context_id else None
        matched: list[RunRecord] = []
        total = 0
        offset = 0
        first_at = until
        while True:
            rows = await self.state.runtime.store.list_runs(
                tenant=p.tenant,
                agent=self.agent.name,
                tag=tag,
                until=until,
                limit=SCAN,
                offset=offset,
            )
            if first_at is None and rows:
                first_at = rows[0].created_at + 1e-6
            for run in rows:
                if statuses is not None and RunStatus(run.status) not in statuses:
                    continue
                if after is not None and (run.updated_at or run.created_at) < after:
                    continue
                if (
                    wanted is not None
                    and run.status in (RunStatus.WAITING, RunStatus.FAILED)
                    and (await self.project(run, context, artifacts=False)).status.state != wanted
                ):
                    continue
                total += 1
                if total > skip and len(matched) < size:
                    matched.append(run)
            if len(rows) < SCAN:
                break
            offset += SCAN
        out = []
        for run in matched:
            task = await self.project(run, context, artifacts=params.include_artifacts)
            out.append(apply_history_length(task, params))
        more = skip + len(matched) < total
        token = _token(first_at, skip + len(matched)) if more else ""
        return pb.ListTasksResponse(
            tasks=out, next_page_token=token, page_size=size, total_size=total
        )


def _token(until: float | None, skip: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"until": until, "skip": skip})).decode()


def _cursor(token: str) -> tuple[float | None, int]:
    if not token:
        return None, 0
    try:
        body: Any = orjson.loads(base64.urlsafe_b64decode(token.encode()))
        return body["until"], int(body["skip"])
    except Exception:
        raise InvalidParamsError(
            message=f"invalid pageToken {token!r}: pass one a listing returned"
        ) from None
