"""Human tasks: a workflow's `call: human` waits durably for a person's answer to a form.

The task is an open tool call (`human_task`) parked on the signal `task:<call id>`; its
form (a JSON schema), title and description are the call's journaled arguments. A person
answers through `bosun task answer RUN [CALL] --data JSON`, `POST /api/runs/{id}/tasks`
or the console's Tasks page; every edge checks the answer against the form here before
delivering it, so a bad answer is refused with what is wrong and the task keeps waiting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from bosun.engine.state import rebuild
from bosun.errors import BosunError, InvalidAnswer
from bosun.spec.vocab import WaitStatus
from bosun.store.base import Store
from bosun.workflow.tools import task_signal

MAX_INBOX_RUNS = 500  # waiting runs read for the inbox, newest first


@dataclass(frozen=True)
class HumanTask:
    run_id: str
    call_id: str
    title: str
    description: str
    form: dict[str, Any]
    assignee: str | None
    data: Any  # what the form is pre-filled with, if anything

    @property
    def signal(self) -> str:
        return task_signal(self.call_id)

    @property
    def name(self) -> str:
        """The task's name in the document (the last part of its pointer)."""
        return self.call_id.split("#")[0].rsplit("/", 1)[-1]

    def fields(self) -> list[dict[str, Any]]:
        """The form's fields for a page: name, title, kind, required, choices."""
        props = self.form.get("properties") or {}
        required = set(self.form.get("required") or ())
        out = []
        for name, spec in props.items():
            kind = spec.get("type", "string")
            out.append(
                {
                    "name": name,
                    "title": spec.get("title") or name,
                    "kind": "choice" if "enum" in spec else kind,
                    "choices": spec.get("enum") or [],
                    "required": name in required,
                    "description": spec.get("description", ""),
                }
            )
        return out


def pending_in(run_id: str, events: list) -> list[HumanTask]:
    """The run's human tasks still waiting for an answer, from its journal."""
    state = rebuild(run_id, events)
    found = []
    for call in state.open_calls.values():
        if call.tool != "human_task" or call.wait_status != WaitStatus.PENDING:
            continue
        args = orjson.loads(call.arguments or "{}")
        found.append(
            HumanTask(
                run_id=run_id,
                call_id=call.call_id,
                title=args.get("title") or call.call_id,
                description=args.get("description") or "",
                form=args.get("form") or {"type": "object"},
                assignee=args.get("assignee"),
                data=args.get("data"),
            )
        )
    return found


async def pending(store: Store, run_id: str) -> list[HumanTask]:
    return pending_in(run_id, await store.events(run_id))


async def inbox(store: Store, tenant: str) -> list[HumanTask]:
    """Every human task waiting in the tenant's workflow runs."""
    runs = await store.list_runs(tenant=tenant, status="waiting", limit=MAX_INBOX_RUNS)
    found: list[HumanTask] = []
    for run in runs:
        if (run.spec or {}).get("model", {}).get("provider") != "workflow":
            continue
        found.extend(await pending(store, run.id))
    return found


def choose(tasks: list[HumanTask], run_id: str, call: str | None) -> HumanTask:
    """The task `call` names (its call id, or its name in the document); the only one when
    `call` is None."""
    if call is None:
        if len(tasks) == 1:
            return tasks[0]
        if not tasks:
            raise BosunError(f"run {run_id} has no human task waiting for an answer")
        names = ", ".join(t.call_id for t in tasks)
        raise BosunError(f"run {run_id} has {len(tasks)} tasks waiting; name one of: {names}")
    for task in tasks:
        if call in (task.call_id, task.name):
            return task
    names = ", ".join(t.call_id for t in tasks) or "none"
    raise BosunError(f"run {run_id} has no human task {call!r} waiting (waiting: {names})")


def check(task: HumanTask, answer: Any) -> Any:
    """`answer` if it fits the form, else `InvalidAnswer` saying where and why."""
    import jsonschema

    problems = sorted(
        jsonschema.Draft202012Validator(task.form).iter_errors(answer), key=lambda e: e.path
    )
    if problems:
        parts = []
        for p in problems[:5]:
            at = "/".join(str(x) for x in p.absolute_path) or "(answer)"
            parts.append(f"{at}: {p.message}")
        raise InvalidAnswer(
            f"the answer does not fit the form of {task.title!r}: " + "; ".join(parts)
        )
    return answer


async def answer(runtime: Any, run_id: str, call: str | None, data: Any) -> HumanTask:
    """Check `data` against the task's form and deliver it: the run wakes with it as the
    task's output. Raises `InvalidAnswer` (nothing delivered) or `BosunError`."""
    task = choose(await pending(runtime.store, run_id), run_id, call)
    check(task, data)
    await runtime.signal(run_id, task.signal, data)
    return task


def form_answer(task: HumanTask, form: dict[str, str]) -> dict[str, Any]:
    """An HTML form's fields as the JSON answer its schema asks for (checkboxes, numbers)."""
    out: dict[str, Any] = {}
    for f in task.fields():
        raw = form.get(f["name"])
        if f["kind"] == "boolean":
            out[f["name"]] = raw in ("on", "true", "1", "yes")
        elif raw in (None, ""):
            continue
        elif f["kind"] in ("number", "integer"):
            try:
                out[f["name"]] = int(raw) if f["kind"] == "integer" else float(raw)
            except ValueError:
                out[f["name"]] = raw  # the form's check says what is wrong
        else:
            out[f["name"]] = raw
    return out
