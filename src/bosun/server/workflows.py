"""Workflows on the HTTP edges: human tasks (the inbox, answers) and a run's graph.

API: `GET /api/tasks` (the tenant's human tasks waiting for an answer), `POST
/api/runs/{id}/tasks` (`{"task": name or call id (optional), "data": answer}`: 422 when the
answer does not fit the form, nothing delivered), `GET /api/runs/{id}/workflow` (the path
taken, where it waits, a fault). Console: the Tasks page (each task's form, built from its
JSON schema) and `/runs/{id}/graph` (the SVG of `bosun.workflow.graph`). Answering needs
the `approve` permission, as deciding an approval does; tenants see only their runs.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from bosun.errors import BosunError
from bosun.server import ops, schemas
from bosun.server.auth import require
from bosun.server.console import User, back, page
from bosun.server.keys import Principal
from bosun.server.state import ServerState, state_of
from bosun.spec.agent import Agent
from bosun.workflow import graph, tasks
from bosun.workflow.runs import view

api = APIRouter(prefix="/api", tags=["workflows"], responses=schemas.errors(*schemas.COMMON_ERRORS))
console = APIRouter(include_in_schema=False)
Reader = Annotated[Principal, Depends(require("read"))]
Approver = Annotated[Principal, Depends(require("approve"))]
State = Annotated[ServerState, Depends(state_of)]


def _task(t: tasks.HumanTask) -> dict[str, Any]:
    return {
        "run_id": t.run_id,
        "task": t.name,
        "call_id": t.call_id,
        "title": t.title,
        "description": t.description,
        "assignee": t.assignee,
        "form": t.form,
        "data": t.data,
    }


async def _workflow_view(state: ServerState, p: Principal, run_id: str):
    run = await ops.get_run(state, p, run_id)
    if (run.spec or {}).get("model", {}).get("provider") != "workflow":
        raise HTTPException(404, f"run {run_id} is not a workflow run")
    agent = Agent.from_snapshot(run.spec)
    events = await state.runtime.store.events(run_id)
    return run, agent, view(agent, run_id, events)


@api.get("/tasks", summary="Human tasks of workflow runs waiting for an answer")
async def list_tasks(p: Reader, state: State) -> list[dict[str, Any]]:
    return [_task(t) for t in await tasks.inbox(state.runtime.store, p.tenant)]


@api.post(
    "/runs/{run_id}/tasks",
    summary="Answer a workflow run's human task",
    responses=schemas.errors(404, 409),
)
async def answer_task(
    run_id: str,
    p: Approver,
    state: State,
    data: Annotated[Any, Body(description="the answer; checked against the task's form")],
    task: Annotated[
        str | None, Body(description="its name or call id; the only one if omitted")
    ] = None,
) -> dict[str, Any]:
    await ops.get_run(state, p, run_id, "answer_task")
    try:
        answered = await tasks.answer(state.runtime, run_id, task, data)
    except tasks.InvalidAnswer as exc:
        raise HTTPException(422, str(exc)) from None
    except BosunError as exc:
        raise HTTPException(409, str(exc)) from None
    state.hub.poke(p.tenant, run_id)
    return {
        "run_id": run_id,
        "task": answered.name,
        "call_id": answered.call_id,
        "message": "delivered; a worker continues the run",
    }


@api.get(
    "/runs/{run_id}/workflow",
    summary="A workflow run's path, waits and fault",
    responses=schemas.errors(404),
)
async def workflow_of(run_id: str, p: Reader, state: State) -> dict[str, Any]:
    _, _, seen = await _workflow_view(state, p, run_id)
    return {"path": seen.path, "waiting": seen.waiting, "error": seen.error}


@console.get("/tasks", response_class=HTMLResponse)
async def tasks_page(request: Request, p: User, state: State):
    found = await tasks.inbox(state.runtime.store, p.tenant)
    return page(request, "tasks.html", p, nav="tasks", tasks=found)


@console.post("/tasks/answer")
async def tasks_answer(request: Request, p: User, state: State):
    form = {k: str(v) for k, v in (await request.form()).items()}
    run_id, call = form.get("run_id", ""), form.get("call_id", "")
    try:
        if not p.can("approve"):
            raise HTTPException(403, "answering a task needs the approve permission")
        await ops.get_run(state, p, run_id, "answer_task")
        task = tasks.choose(await tasks.pending(state.runtime.store, run_id), run_id, call)
        await tasks.answer(state.runtime, run_id, call, tasks.form_answer(task, form))
    except (HTTPException, BosunError) as exc:
        detail = exc.detail if isinstance(exc, HTTPException) else str(exc)
        return back(request, "/tasks", err=str(detail))
    state.hub.poke(p.tenant, run_id)
    return back(request, "/tasks", msg=f"Answered {task.title!r}: run {run_id} continues.")


@console.get("/runs/{run_id}/graph", response_class=HTMLResponse)
async def graph_page(request: Request, run_id: str, p: User, state: State):
    try:
        run, agent, seen = await _workflow_view(state, p, run_id)
    except HTTPException as exc:
        return page(request, "error.html", p, exc.status_code, nav="runs", error=exc.detail)
    drawing = Markup(graph.svg(tasks_document(agent), seen))  # escaped inside graph.svg
    return page(request, "workflow.html", p, nav="runs", run=run, svg=drawing, seen=seen)


def tasks_document(agent: Agent) -> dict[str, Any]:
    import orjson

    return orjson.loads(agent.instructions)
