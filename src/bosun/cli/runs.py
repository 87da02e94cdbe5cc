"""The run lifecycle commands: run, submit, worker, runs, show, resume, cancel, signal,
pause, unpause, gc (the observe layer's usage and trace commands are registered here too,
in the order `bosun --help` lists them)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import time
from typing import Any

import orjson

from bosun.cli.common import dumps, parse_duration, parse_tag, result_dict
from bosun.engine.runtime import Runtime
from bosun.engine.worker import Worker
from bosun.errors import BosunError
from bosun.journal.codec import event_to_dict
from bosun.observe import commands as observe_commands
from bosun.observe.results import whole_result
from bosun.observe.shown import shown
from bosun.observe.timeline import (
    TEAM_STORY_MAX,
    actions,
    format_cost,
    format_duration,
    format_time,
    render,
    render_actions,
    team_story,
)
from bosun.observe.tree import MAX_TREE, ordered_tree
from bosun.spec.limits import Limits
from bosun.spec.vocab import RunStatus, WaitKind, WaitStatus
from bosun.workflow.commands import load_target as load_agent  # agents and workflow files


def _run_options(args: argparse.Namespace) -> dict[str, Any]:
    limits = None
    if args.max_steps is not None or args.max_cost is not None:
        limits = Limits(max_steps=args.max_steps, max_cost=args.max_cost, max_wall_seconds=None)
    return {
        "tenant": args.tenant,
        "user": args.user,
        "session": args.session,
        "tags": dict(args.tag or []),
        "limits": limits,
        "attachments": args.attach or [],
    }


async def cmd_run(rt: Runtime, args: argparse.Namespace) -> int:
    agent = load_agent(args.agent)
    result = await rt.run(agent, args.input, **_run_options(args))
    if args.json:
        print(dumps(result_dict(result)))
    else:
        if result.output is not None:
            print(result.output)
        else:
            print(f"[{result.status}] {result.reason}")
        if result.status == RunStatus.WAITING_APPROVAL:
            for a in await rt.store.list_approvals(run_id=result.run_id):
                print(f"  {a.id}: {a.tool} needs role {a.role} ({a.reason})")
                print(f"    bosun approve {a.id}   |   bosun deny {a.id} --reason TEXT")
            print(
                f"  then a worker resumes the run (`bosun worker`), or run it here: "
                f"bosun resume {result.run_id}"
            )
        if result.status == "waiting":
            for w in await rt.store.waits(result.run_id):
                if w.status == WaitStatus.PENDING and w.kind == WaitKind.SIGNAL:
                    print(f"  {w.id}: waits for signal {w.key}")
                    print(f"    bosun signal {result.run_id} {w.key} --data JSON")
                elif w.status == WaitStatus.PENDING and w.kind != WaitKind.APPROVAL:
                    print(f"  {w.id}: waits for {w.kind} {w.key}".rstrip())
            print("  a worker continues the run once they settle (`bosun worker`)")
        print(
            f"\nrun {result.run_id}: {result.status}, {result.steps} steps, "
            f"{result.tool_calls} tool calls, {result.input_tokens + result.output_tokens} tokens, "
            f"{format_cost(result.cost)}  (bosun show {result.run_id})",
            file=sys.stderr,
        )
    return 0 if result.status == RunStatus.SUCCEEDED else 1


async def cmd_submit(rt: Runtime, args: argparse.Namespace) -> int:
    agent = load_agent(args.agent)
    run_id = await rt.submit(agent, args.input, key=args.key, **_run_options(args))
    status = (await rt.get_run(run_id)).status if args.key else "queued"
    print(dumps({"run_id": run_id, "status": status}) if args.json else run_id)
    return 0


async def cmd_worker(rt: Runtime, args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    worker = Worker(
        rt,
        concurrency=args.concurrency,
        poll_interval=args.poll_interval,
        shutdown_grace=args.shutdown_grace,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(
        f"bosun worker {rt.owner} on {rt.store.url} (concurrency {args.concurrency}, "
        f"lease {rt.lease_seconds:g}s); Ctrl-C to stop",
        file=sys.stderr,
        flush=True,
    )
    triggers = None
    if args.triggers:
        from bosun.triggers.runner import Triggers

        triggers = Triggers.load(rt, args.triggers)
        await triggers.start(stop)
    try:
        async with observe_commands.observing(rt, args, worker):
            await worker.serve(stop, exit_when_idle=args.exit_when_idle)
    finally:
        if triggers is not None:
            await triggers.stop()
    print(f"bosun worker stopped after {worker.completed} runs", file=sys.stderr)
    return 0


async def cmd_runs(rt: Runtime, args: argparse.Namespace) -> int:
    runs = await rt.store.list_runs(status=args.status, agent=args.agent, limit=args.limit)
    if args.json:
        print(
            dumps(
                [
                    {
                        "run_id": r.id,
                        "agent": r.agent,
                        "agent_version": r.agent_version,
                        "status": r.status,
                        "steps": r.steps,
                        "tokens": r.input_tokens + r.output_tokens,
                        "cost": r.cost,
                        "started": r.created_at,
                        "finished": r.finished_at,
                        "reason": r.reason,
                        "parent_id": r.parent_id,
                        "root_id": r.root_id or r.id,
                    }
                    for r in runs
                ]
            )
        )
        return 0
    if not runs:
        print(f"no runs in {rt.store.url}")
        return 0
    header = ("RUN", "AGENT", "STATUS", "STEPS", "TOKENS", "COST", "STARTED", "DURATION")
    rows = [
        (
            r.id,
            r.agent,
            r.status,
            str(r.steps),
            str(r.input_tokens + r.output_tokens),
            format_cost(r.cost),
            format_time(r.created_at),
            format_duration((r.finished_at or time.time()) - r.created_at),
        )
        for r in runs
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


async def cmd_show(rt: Runtime, args: argparse.Namespace) -> int:
    run, events = shown(await rt.get_run(args.run_id), await rt.events(args.run_id))
    if args.call is not None:  # one call's result: with --full, the whole of it
        if not args.full:
            call = next(
                (a.call for a in actions(events, run.spec) if a.call.call_id == args.call), None
            )
            if call is None:
                raise BosunError(f"run {run.id} has no tool call {args.call!r}: see --calls")
            print(dumps(call.as_dict()))
            return 0
        _, data = await whole_result(rt.store, run.tenant, events, args.call)
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return 0
    if args.full:
        raise BosunError("--full goes with --call CALL_ID: the whole result of one tool call")
    if args.calls:  # the one projection of calls, as the API's `/runs/{id}/calls` shows it
        acts = actions(events, run.spec)
        if args.json:
            print(dumps([a.call.as_dict() for a in acts]))
        else:
            print("\n".join(render_actions(acts) or ["  (no tool calls)"]))
    elif args.json:
        print(dumps([event_to_dict(e, seq) for seq, e in events]))
    else:
        print(render(run, events, await rt.store.list_findings(run_id=args.run_id)))
        tree = await rt.store.list_runs(root_id=run.root_id or run.id, limit=MAX_TREE)
        if len(tree) > 1:
            print("\n".join(["", "run tree:", *tree_lines(tree, marked=run.id)]))
        if 1 < len(tree) <= TEAM_STORY_MAX:
            story = team_story([shown(r, await rt.events(r.id)) for r in tree])
            if story:
                print("\n".join(["", *story]))
    return 0


def tree_lines(runs: list[Any], *, marked: str) -> list[str]:
    """A run tree as indented lines (`observe.tree.ordered_tree`'s order), each node with
    what it spent itself and, while it runs, what it holds of its parent's budget; then the
    tree's total against the root's limits. The run being shown is marked."""
    lines = []
    for depth, r in ordered_tree(runs):
        held = ""
        if r.reserved_steps is not None:
            held = f"  holds {_spend(r.reserved_steps, r.reserved_tokens, r.reserved_cost)}"
        lines.append(
            f"{'  ' * (depth + 1)}{r.id}  {r.agent}  {r.status}"
            f"  {_spend(r.steps, r.input_tokens + r.output_tokens, r.cost)}{held}"
            + ("  <- this run" if r.id == marked else "")
        )
    total = _spend(
        sum(r.steps for r in runs),
        sum(r.input_tokens + r.output_tokens for r in runs),
        sum(r.cost for r in runs),
    )
    root = next((r for r in runs if r.parent_id is None), None)
    limits = ""
    if root is not None:
        named = [
            f"{name} {value}"
            for name, value in (
                ("max_steps", root.limit_steps),
                ("max_tokens", root.limit_tokens),
                ("max_cost", root.limit_cost),
            )
            if value is not None
        ]
        limits = f" (root's limits: {', '.join(named)})" if named else ""
    return [*lines, f"  tree total: {total}{limits}"]


def _spend(steps: int, tokens: int | None, cost: float | None) -> str:
    return f"{steps} steps, {tokens or 0} tokens, {format_cost(cost or 0.0)}"


async def cmd_resume(rt: Runtime, args: argparse.Namespace) -> int:
    """Drive a run here, now: after its approvals are decided, or when no worker runs."""
    result = await rt.resume(args.run_id)
    if args.json:
        print(dumps(result_dict(result)))
    else:
        print(result.output if result.output is not None else f"[{result.status}] {result.reason}")
        print(
            f"\nrun {result.run_id}: {result.status}, {result.steps} steps, "
            f"{result.tool_calls} tool calls, {format_cost(result.cost)}",
            file=sys.stderr,
        )
    return 0 if result.status == RunStatus.SUCCEEDED else 1


async def cmd_cancel(rt: Runtime, args: argparse.Namespace) -> int:
    if await rt.cancel(args.run_id):
        print(f"run {args.run_id} will stop at its next step boundary")
        return 0
    run = await rt.get_run(args.run_id)
    print(f"run {args.run_id} already finished ({run.status}); nothing to cancel")
    return 1


async def cmd_signal(rt: Runtime, args: argparse.Namespace) -> int:
    try:
        payload = None if args.data is None else orjson.loads(args.data)
    except orjson.JSONDecodeError as exc:
        raise BosunError(
            f"--data must be JSON (the signal's payload), e.g. --data '{{\"ok\": true}}': {exc}"
        ) from None
    wait_id = await rt.signal(args.run_id, args.name, payload)
    if wait_id is None:
        print(f"signal {args.name} kept for run {args.run_id}: its next wait for it takes it")
    else:
        print(f"signal {args.name} delivered to run {args.run_id} (wait {wait_id})")
    return 0


async def cmd_pause(rt: Runtime, args: argparse.Namespace) -> int:
    if await rt.pause(args.run_id):
        print(
            f"run {args.run_id} will pause at its next step boundary (a queued or parked run:"
            f" when it next runs); `bosun unpause {args.run_id}` continues it"
        )
        return 0
    run = await rt.get_run(args.run_id)
    print(f"run {args.run_id} is {run.status}; nothing to pause")
    return 1


async def cmd_unpause(rt: Runtime, args: argparse.Namespace) -> int:
    if await rt.unpause(args.run_id):
        print(f"run {args.run_id} is queued again; a worker continues it from its journal")
        return 0
    run = await rt.get_run(args.run_id)
    print(f"run {args.run_id} is {run.status}, not paused; nothing to continue")
    return 1


async def cmd_gc(rt: Runtime, args: argparse.Namespace) -> int:
    from bosun.triggers.spec import check_retention

    try:
        check_retention(args.deliveries_older_than)
    except BosunError as exc:
        print(f"error: --deliveries-older-than: {exc}", file=sys.stderr)
        return 2
    report = await rt.store.gc(time.time() - args.older_than, dry_run=args.dry_run)
    verb, freed = ("would remove", "would be freed") if report.dry_run else ("removed", "freed")
    print(
        f"{verb} the journals of {report.runs} finished runs ({report.events} events, "
        f"{report.blobs} payloads): {report.bytes_freed / 1024:.1f} KiB {freed}; "
        "their summary rows remain in `bosun runs`"
    )
    print(
        f"{verb} {report.artifacts} artifacts no retained run references: "
        f"{report.artifact_bytes / 1024:.1f} KiB {freed}"
        + ("  (dry run: nothing was deleted)" if report.dry_run else "")
    )
    deliveries, emits = await rt.store.gc_triggers(
        time.time() - args.deliveries_older_than, dry_run=args.dry_run
    )
    print(
        f"{verb} {deliveries} trigger deliveries and {emits} delivered emits older than"
        f" {args.deliveries_older_than / 86400:g} days"
    )
    return 0


def add_run_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register the run lifecycle commands (and the observe layer's) on `sub`."""

    def run_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("agent", metavar="AGENT_FILE", help="agent .yaml/.py file or module:attr")
        p.add_argument("--input", "-i", required=True, help="the user's request")
        p.add_argument(
            "--attach",
            metavar="FILE",
            action="append",
            help="an image or audio file for the model, kept as an artifact (repeatable)",
        )
        p.add_argument("--tenant", default="default")
        p.add_argument("--user", default=None)
        p.add_argument("--session", default=None)
        p.add_argument(
            "--tag", type=parse_tag, action="append", help="business object, e.g. order=1234"
        )
        p.add_argument("--max-steps", type=int, default=None, help="tighter step limit")
        p.add_argument("--max-cost", type=float, default=None, help="tighter cost limit (USD)")
        p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("run", parents=[common], help="run an agent to completion here")
    run_args(p)
    p.set_defaults(handler=cmd_run)

    p = sub.add_parser("submit", parents=[common], help="queue a run for a worker")
    run_args(p)
    p.add_argument(
        "--key",
        default=None,
        help="idempotency key: submitting again with the same key returns the same run",
    )
    p.set_defaults(handler=cmd_submit)

    p = sub.add_parser("worker", parents=[common], help="process queued and interrupted runs")
    p.add_argument("--concurrency", type=int, default=100)
    p.add_argument("--poll-interval", type=float, default=0.5)
    p.add_argument("--shutdown-grace", type=float, default=30.0)
    p.add_argument(
        "--tool-threads",
        type=int,
        default=None,
        metavar="N",
        help="threads for sync tool bodies in this process (default 64); calls beyond wait,"
        " not started",
    )
    p.add_argument("--exit-when-idle", action="store_true", help="stop when nothing is left")
    p.add_argument(
        "--triggers",
        default=None,
        metavar="FILE",
        help="also run this triggers file's schedules, queues and event triggers here",
    )
    observe_commands.add_worker_options(p, parse_duration)
    p.set_defaults(handler=cmd_worker)

    p = sub.add_parser("runs", parents=[common], help="list runs, newest first")
    p.add_argument("--status", default=None)
    p.add_argument("--agent", default=None)
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_runs)

    p = sub.add_parser("show", parents=[common], help="a run's timeline")
    p.add_argument("run_id")
    p.add_argument("--json", action="store_true", help="the raw journal events")
    p.add_argument(
        "--calls", action="store_true", help="only its tool calls (with --json: the API's shape)"
    )
    p.add_argument("--call", metavar="CALL_ID", help="one tool call (as JSON)")
    p.add_argument(
        "--full",
        action="store_true",
        help="with --call: print the call's whole result (kept as an artifact when it was cut)",
    )
    p.set_defaults(handler=cmd_show)

    observe_commands.add_trace_parser(sub, common, parse_tag)
    observe_commands.add_usage_parser(sub, common, parse_duration)
    observe_commands.add_export_trace_parser(sub, common)

    p = sub.add_parser(
        "resume", parents=[common], help="drive a queued or interrupted run here, now"
    )
    p.add_argument("run_id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_resume)

    p = sub.add_parser("cancel", parents=[common], help="stop a run at its next step boundary")
    p.add_argument("run_id")
    p.set_defaults(handler=cmd_cancel)

    p = sub.add_parser("signal", parents=[common], help="send a named signal to a run")
    p.add_argument("run_id")
    p.add_argument("name", help="the signal's name, as the run's Wait(signal=...) names it")
    p.add_argument("--data", default=None, help="the payload, as JSON")
    p.set_defaults(handler=cmd_signal)

    p = sub.add_parser("pause", parents=[common], help="pause a run at its next step boundary")
    p.add_argument("run_id")
    p.set_defaults(handler=cmd_pause)

    p = sub.add_parser("unpause", parents=[common], help="queue a paused run again")
    p.add_argument("run_id")
    p.set_defaults(handler=cmd_unpause)

    p = sub.add_parser(
        "gc", parents=[common], help="remove journals of old finished runs and unused artifacts"
    )
    p.add_argument(
        "--older-than", type=parse_duration, default=30 * 86400, help="e.g. 30d, 12h (30d)"
    )
    p.add_argument(
        "--deliveries-older-than",
        type=parse_duration,
        default=30 * 86400,
        help="keep trigger deliveries (the dedup and replay record) this long (30d; over 1d)",
    )
    p.add_argument("--dry-run", action="store_true", help="report what would go; delete nothing")
    p.set_defaults(handler=cmd_gc)
