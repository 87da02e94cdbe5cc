"""The `bosun` command. Every command takes `--db` (SQLite path or postgresql:// URL;
default `BOSUN_DB`, else ./bosun.db). Exit codes: 0 ok, 1 the run did not succeed, 2 error."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import re
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from bosun import __version__
from bosun.engine.runtime import RunResult, Runtime
from bosun.engine.worker import Worker
from bosun.errors import BosunError
from bosun.govern import audit, policy_check
from bosun.journal.codec import event_to_dict
from bosun.journal.redact import Redactor
from bosun.observe import commands as observe_commands
from bosun.observe.shown import shown
from bosun.observe.timeline import (
    actions,
    format_cost,
    format_duration,
    format_time,
    render,
    render_actions,
)
from bosun.observe.tree import MAX_TREE, ordered_tree
from bosun.server.commands import add_server_commands
from bosun.spec.limits import Limits
from bosun.spec.loader import load_agent
from bosun.store import default_db_url

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """`30d`, `12h`, `15m`, `90s`, `2w` -> seconds."""
    match = _DURATION.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration: write a number and a unit, e.g. 30d, 12h, 15m, 90s"
        )
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_tag(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"tag {text!r}: write it as key=value, e.g. order=1234")
    return key, value


def dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


def result_dict(result: RunResult) -> dict[str, Any]:
    return {
        "run_id": result.run_id,
        "status": result.status,
        "output": result.output,
        "reason": result.reason,
        "steps": result.steps,
        "tool_calls": result.tool_calls,
        "input_tokens": result.input_tokens,
        "output_tokens": result.output_tokens,
        "cost": result.cost,
    }


# -- commands ----------------------------------------------------------------


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
        if result.status == "waiting_approval":
            for a in await rt.store.list_approvals(run_id=result.run_id):
                print(f"  {a.id}: {a.tool} needs role {a.role} ({a.reason})")
                print(f"    bosun approve {a.id}   |   bosun deny {a.id} --reason TEXT")
            print(
                f"  then a worker resumes the run (`bosun worker`), or run it here: "
                f"bosun resume {result.run_id}"
            )
        if result.status == "waiting":
            for w in await rt.store.waits(result.run_id):
                if w.status == "pending" and w.kind == "signal":
                    print(f"  {w.id}: waits for signal {w.key}")
                    print(f"    bosun signal {result.run_id} {w.key} --data JSON")
                elif w.status == "pending" and w.kind != "approval":
                    print(f"  {w.id}: waits for {w.kind} {w.key}".rstrip())
            print("  a worker continues the run once they settle (`bosun worker`)")
        print(
            f"\nrun {result.run_id}: {result.status}, {result.steps} steps, "
            f"{result.tool_calls} tool calls, {result.input_tokens + result.output_tokens} tokens, "
            f"{format_cost(result.cost)}  (bosun show {result.run_id})",
            file=sys.stderr,
        )
    return 0 if result.status == "succeeded" else 1


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
    async with observe_commands.observing(rt, args, worker):
        await worker.serve(stop, exit_when_idle=args.exit_when_idle)
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
    return 0 if result.status == "succeeded" else 1


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
    report = await rt.store.gc(time.time() - args.older_than)
    print(
        f"removed the journals of {report.runs} finished runs ({report.events} events, "
        f"{report.blobs} payloads): {report.bytes_freed / 1024:.1f} KiB freed; "
        "their summary rows remain in `bosun runs`"
    )
    return 0


# -- governance ---------------------------------------------------------------


def whoami(args: argparse.Namespace) -> str:
    return args.by or os.environ.get("BOSUN_USER") or getpass.getuser()


async def cmd_approvals(rt: Runtime, args: argparse.Namespace) -> int:
    status = None if args.all else "pending"
    approvals = await rt.approvals(status=status, tenant=args.tenant)
    specs = {a.run_id: (await rt.get_run(a.run_id)).spec for a in approvals}
    if args.json:  # the API's shape and field names (`approval_id`), redacted alike
        from bosun.server.schemas import Approval

        print(dumps([Approval.of(a, specs[a.run_id]).model_dump(mode="json") for a in approvals]))
        return 0
    if not approvals:
        print("no pending approvals" if status else "no approvals")
        return 0
    for a in approvals:
        a = Redactor.for_run(specs[a.run_id]).approval(a)
        expires = f", expires {format_time(a.expires_at)}" if a.expires_at else ""
        print(f"{a.id}  [{a.status}]  {a.tool}({a.arguments})")
        print(
            f"    run {a.run_id} (agent {a.agent}, tenant {a.tenant}), needs role {a.role}{expires}"
        )
        print(f"    rule {a.rule}: {a.reason}")
        if a.decided_by:
            print(f"    {a.status} by {a.decided_by}" + (f": {a.comment}" if a.comment else ""))
    return 0


async def cmd_approve(rt: Runtime, args: argparse.Namespace) -> int:
    edit = None
    if args.edit is not None:
        try:
            edit = orjson.loads(args.edit)
        except orjson.JSONDecodeError as exc:
            raise BosunError(f"--edit must be a JSON object of arguments: {exc}") from None
        if not isinstance(edit, dict):
            raise BosunError("--edit must be a JSON object of arguments, e.g. '{\"amount\": 50}'")
    record = await rt.approve(args.approval_id, by=whoami(args), edit=edit, comment=args.comment)
    print(
        f"approved {record.id} ({record.tool}) as {record.decided_by}; run {record.run_id}"
        " continues once all its approvals are resolved: a running worker (`bosun worker`,"
        f" `bosun serve`) picks it up, or run it here now with `bosun resume {record.run_id}`"
    )
    return 0


async def cmd_deny(rt: Runtime, args: argparse.Namespace) -> int:
    record = await rt.deny(args.approval_id, by=whoami(args), reason=args.reason)
    print(f"denied {record.id} ({record.tool}); the agent is told: {args.reason}")
    return 0


async def cmd_kill(rt: Runtime, args: argparse.Namespace) -> int:
    switch = await rt.kill(args.scope, reason=args.reason, by=whoami(args))
    print(f"kill switch {switch.scope} set by {switch.set_by}: {switch.reason}")
    print("nothing in that scope executes from now on; running runs halt at their next step")
    return 0


async def cmd_unkill(rt: Runtime, args: argparse.Namespace) -> int:
    if await rt.unkill(args.scope, by=whoami(args)):
        print(f"kill switch {args.scope} cleared")
        return 0
    print(f"no kill switch set for {args.scope}")
    return 1


async def cmd_killswitches(rt: Runtime, args: argparse.Namespace) -> int:
    switches = await rt.store.kill_switches()
    if not switches:
        print("no kill switch is set")
    for k in switches:
        print(f"{k.scope}  set by {k.set_by} at {format_time(k.set_at)}: {k.reason}")
    return 0


async def cmd_rollback(rt: Runtime, args: argparse.Namespace) -> int:
    report = await rt.rollback(args.run_id, by=whoami(args), last=args.last)
    for label in report.compensated:
        print(f"compensated  {label}")
    for label in report.failed:
        print(f"FAILED       {label} (its undo raised; see bosun show {args.run_id})")
    for label in report.missing:
        print(f"NO UNDO      {label}: declares no undo; reverse it by hand")
    if not (report.compensated or report.failed or report.missing):
        print(f"run {args.run_id} has no executed effects left to roll back")
    return 0 if report.ok else 1


async def cmd_resolve(rt: Runtime, args: argparse.Namespace) -> int:
    if args.retry:
        if args.result is not None or args.not_done is not None:
            raise BosunError("--retry takes no --result or --not-done: there is no call to settle")
        await rt.resolve(args.run_id, by=whoami(args), retry=True)
        print(f"run {args.run_id} is queued again; a worker resumes it (or `bosun resume`)")
        return 0
    if (args.result is None) == (args.not_done is None):
        raise BosunError("say what happened: --result JSON (it took effect) or --not-done REASON")
    result = None
    if args.result is not None:
        try:
            result = orjson.loads(args.result)
        except orjson.JSONDecodeError as exc:
            raise BosunError(f"--result must be JSON (what the call returned): {exc}") from None
    call_id = await rt.resolve(
        args.run_id, by=whoami(args), result=result, failed=args.not_done, call_id=args.call
    )
    outcome = "took effect" if args.not_done is None else "did not take effect"
    print(f"recorded that {call_id} {outcome}; run {args.run_id} is queued and a worker resumes it")
    return 0


async def cmd_audit(rt: Runtime, args: argparse.Namespace) -> int:
    """Exit codes: 0 intact, 1 tampered, 2 a usage error (a head that cannot be read)."""
    if args.audit_command in ("verify", "head"):
        expect = audit.expected_heads(args.expect_head or [])
        result = await audit.verify(rt.store, expect)
        if not result.ok:
            where = f" at record {result.first_bad_seq}" if result.first_bad_seq else ""
            print(f"audit trail TAMPERED{where}: {result.problem}")
            return 1
        if args.audit_command == "head":
            print(result.head.to_json() if result.head else "")
            return 0
        journal = result.checked.get("journal_events", 0)
        heads = f", {len(expect)} recorded heads found" if expect else ""
        print(
            f"audit trail intact: {result.records} records, hash chain verified up to its head,"
            f" {journal} journal events accounted for{heads}"
        )
        return 0
    if args.output and args.output != "-":
        with open(args.output, "wb") as out:
            count = await audit.export(rt.store, out)
        print(f"wrote {count} audit records to {args.output}", file=sys.stderr)
    else:
        count = await audit.export(rt.store, sys.stdout.buffer)
        sys.stdout.flush()
    return 0


def cmd_policy_check(args: argparse.Namespace) -> int:
    code, text = policy_check.check_command(args)
    print(text, file=sys.stdout if code < 2 else sys.stderr)
    return code


# -- parser ------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bosun", description="Run AI agents durably: journaled, bounded, resumable."
    )
    parser.add_argument("--version", action="version", version=f"bosun {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--db",
        default=None,
        help="SQLite path or postgresql:// URL (default: $BOSUN_DB, else ./bosun.db)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def run_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("agent", metavar="AGENT_FILE", help="agent .yaml/.py file or module:attr")
        p.add_argument("--input", "-i", required=True, help="the user's request")
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

    p = sub.add_parser("gc", parents=[common], help="remove journals of old finished runs")
    p.add_argument("--older-than", type=parse_duration, required=True, help="e.g. 30d, 12h")
    p.set_defaults(handler=cmd_gc)

    def by_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("--by", default=None, help="who decides (default: $BOSUN_USER or login)")

    p = sub.add_parser("approvals", parents=[common], help="pending approvals")
    p.add_argument("--tenant", default=None)
    p.add_argument("--all", action="store_true", help="resolved ones too")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_approvals)

    p = sub.add_parser("approve", parents=[common], help="approve a pending call")
    p.add_argument("approval_id")
    p.add_argument("--edit", default=None, metavar="JSON", help="run with these arguments instead")
    p.add_argument("--comment", default=None)
    by_arg(p)
    p.set_defaults(handler=cmd_approve)

    p = sub.add_parser("deny", parents=[common], help="deny a pending call")
    p.add_argument("approval_id")
    p.add_argument("--reason", required=True, help="what the agent is told")
    by_arg(p)
    p.set_defaults(handler=cmd_deny)

    p = sub.add_parser("kill", parents=[common], help="stop every action in a scope now")
    p.add_argument("--scope", required=True, help="global, tenant:X, agent:X or tool:X")
    p.add_argument("--reason", required=True)
    by_arg(p)
    p.set_defaults(handler=cmd_kill)

    p = sub.add_parser("unkill", parents=[common], help="clear a kill switch")
    p.add_argument("--scope", required=True)
    by_arg(p)
    p.set_defaults(handler=cmd_unkill)

    p = sub.add_parser("killswitches", parents=[common], help="list active kill switches")
    p.set_defaults(handler=cmd_killswitches)

    p = sub.add_parser("rollback", parents=[common], help="run the undo of a run's effects")
    p.add_argument("run_id")
    p.add_argument("--last", type=int, default=None, help="only the N most recent effects")
    by_arg(p)
    p.set_defaults(handler=cmd_rollback)

    p = sub.add_parser(
        "resolve", parents=[common], help="settle a needs_attention run's interrupted call"
    )
    p.add_argument("run_id")
    p.add_argument("--call", default=None, help="the call id (default: the one it parked on)")
    p.add_argument("--result", default=None, metavar="JSON", help="it took effect, returning this")
    p.add_argument("--not-done", default=None, metavar="REASON", help="it did not take effect")
    p.add_argument(
        "--retry", action="store_true", help="a run parked with no call open: queue it again"
    )
    by_arg(p)
    p.set_defaults(handler=cmd_resolve)

    p = sub.add_parser(
        "audit", parents=[common], help="verify or export the audit trail, or print its head"
    )
    p.add_argument(
        "audit_command",
        choices=["verify", "export", "head"],
        help="head: verify, then print the chain's head as a JSON line to keep elsewhere",
    )
    p.add_argument("--output", "-o", default=None, help="export to this file (default stdout)")
    p.add_argument(
        "--expect-head",
        action="append",
        metavar="HEAD",
        help="a head `bosun audit head` printed earlier (JSON, its hash, or a file of such"
        " lines): the chain must still hold it (repeatable)",
    )
    p.set_defaults(handler=cmd_audit)

    add_server_commands(sub, common)  # serve, keys, tenants

    p = sub.add_parser("policy", help="check what a policy decides, and why")
    policy_sub = p.add_subparsers(dest="policy_command", required=True, metavar="COMMAND")
    check = policy_sub.add_parser("check", help="which rule matches an action and why")
    policy_check.add_arguments(check)
    check.set_defaults(handler=None, standalone=cmd_policy_check)

    for p in sub.choices.values():
        if p.get_default("handler") in (cmd_worker, cmd_run):
            p.add_argument(
                "--lease-seconds",
                type=float,
                default=30.0,
                help="how long a crashed process keeps its runs before others take them over",
            )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "standalone", None) is not None:  # runs its own event loop (serve)
        try:
            return args.standalone(args)
        except BosunError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    handler: Callable[[Runtime, argparse.Namespace], Awaitable[int]] = args.handler

    async def go() -> int:
        options = {"lease_seconds": getattr(args, "lease_seconds", 30)}
        if getattr(args, "tool_threads", None) is not None:
            options["tool_threads"] = args.tool_threads
        rt = Runtime(args.db or default_db_url(), **options)
        async with rt:
            return await handler(rt, args)

    try:
        return asyncio.run(go())
    except BosunError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `bosun runs | head`: the reader has all it wanted
        _silence_stdout()
        return 0


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush does not fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
