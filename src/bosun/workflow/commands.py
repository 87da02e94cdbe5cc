"""`bosun workflow validate|run` and `bosun task list|answer` (docs/workflows.md)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson

from bosun.errors import BosunError
from bosun.spec import yaml_lines
from bosun.workflow import tasks
from bosun.workflow.document import load_workflow
from bosun.workflow.runs import fault_of, view


def is_workflow_file(path: str) -> bool:
    """Whether a YAML file is a workflow document (top-level `document:` and `do:`)."""
    if not path.endswith((".yaml", ".yml")):
        return False
    try:
        text = yaml_lines.read_file(path, f"file {path}")
    except BosunError:
        return False
    keys = {line.split(":", 1)[0] for line in text.splitlines() if line[:1].isalpha()}
    return "document" in keys and "do" in keys


def load_target(target: str) -> Any:
    """The agent a CLI or server target names: a workflow file's agent, or an agent."""
    if is_workflow_file(target):
        return load_workflow(target).agent
    from bosun.spec.loader import load_agent

    return load_agent(target)


def cmd_validate(args: argparse.Namespace) -> int:
    failed = 0
    for path in args.files:
        try:
            wf = load_workflow(path)
        except BosunError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed += 1
            continue
        tools = ", ".join(sorted(wf.agent.tool_map)) or "none"
        print(f"{path}: valid ({wf.name} {wf.agent.version}; actions: {tools})")
    return 1 if failed else 0


def _input(text: str) -> str:
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise BosunError(f"--input must be JSON text, e.g. '{{}}': {exc}") from None
    return text


async def cmd_run(rt: Any, args: argparse.Namespace) -> int:
    wf = load_workflow(args.file)
    text = args.input
    if text.startswith("@"):
        text = yaml_lines.read_file(text[1:], f"input file {text[1:]}")
    text = _input(text)
    result = await rt.run(wf.agent, text, tenant=args.tenant)
    seen = view(wf.agent, result.run_id, await rt.events(result.run_id))
    if result.output is not None:
        print(result.output)
    elif (error := fault_of(result.reason)) is not None:
        print(f"[faulted] {orjson.dumps(error).decode()}")
    else:
        print(f"[{result.status}] {result.reason}")
    for task in await tasks.pending(rt.store, result.run_id):
        print(f"  human task {task.call_id}: {task.title}")
        print(f"    bosun task answer {result.run_id} {task.name} --data JSON")
    for pointer in seen.waiting:
        print(f"  waiting at {pointer}")
    print(
        f"\nrun {result.run_id}: {result.status}; path: {' > '.join(seen.path)}",
        file=sys.stderr,
    )
    return 0 if result.status == "succeeded" else 1


async def cmd_task_list(rt: Any, args: argparse.Namespace) -> int:
    found = (
        await tasks.pending(rt.store, args.run_id)
        if args.run_id
        else await tasks.inbox(rt.store, args.tenant)
    )
    for task in found:
        print(
            f"{task.run_id}  {task.call_id}  {task.title}"
            + (f"  (for {task.assignee})" if task.assignee else "")
        )
        if args.verbose:
            print(f"    form: {orjson.dumps(task.form).decode()}")
    if not found:
        print("no human task is waiting", file=sys.stderr)
    return 0


async def cmd_task_answer(rt: Any, args: argparse.Namespace) -> int:
    try:
        data = orjson.loads(args.data)
    except orjson.JSONDecodeError as exc:
        raise BosunError(f"--data must be JSON text: {exc}") from None
    task = await tasks.answer(rt, args.run_id, args.task, data)
    print(f"answered {task.title!r} ({task.call_id}); a worker continues run {args.run_id}")
    return 0


def add_workflow_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("workflow", help="Serverless Workflow DSL 1.0 files: validate, run")
    wsub = p.add_subparsers(dest="workflow_command", required=True, metavar="COMMAND")
    v = wsub.add_parser("validate", help="check workflow files against the DSL and Bosun")
    v.add_argument("files", nargs="+")
    v.set_defaults(handler=None, standalone=cmd_validate)
    r = wsub.add_parser("run", parents=[common], help="run a workflow here, to its end or wait")
    r.add_argument("file")
    r.add_argument("--input", default="{}", help="the input as JSON text, or @FILE")
    r.add_argument("--tenant", default="default")
    r.set_defaults(handler=cmd_run)

    p = sub.add_parser("task", help="human tasks of workflows: list, answer")
    tsub = p.add_subparsers(dest="task_command", required=True, metavar="COMMAND")
    ls = tsub.add_parser("list", parents=[common], help="human tasks waiting for an answer")
    ls.add_argument("run_id", nargs="?")
    ls.add_argument("--tenant", default="default")
    ls.add_argument("-v", "--verbose", action="store_true", help="show each task's form")
    ls.set_defaults(handler=cmd_task_list)
    a = tsub.add_parser("answer", parents=[common], help="answer a human task with JSON")
    a.add_argument("run_id")
    a.add_argument("task", nargs="?", help="its call id or name (the only one if omitted)")
    a.add_argument("--data", required=True, help="the answer, as JSON; checked against the form")
    a.set_defaults(handler=cmd_task_answer)
