"""The `bosun` command. Every command takes `--db` (SQLite path or postgresql:// URL;
default `BOSUN_DB`, else ./bosun.db). Exit codes: 0 ok, 1 the run did not succeed, 2 error."""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from bosun.engine.runtime import RunResult, Runtime
from bosun.engine.worker import Worker
from bosun.errors import BosunError
from bosun.journal.codec import event_to_dict
from bosun.observe.timeline import format_cost, format_duration, format_time, render
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
        print(
            f"\nrun {result.run_id}: {result.status}, {result.steps} steps, "
            f"{result.tool_calls} tool calls, {result.input_tokens + result.output_tokens} tokens, "
            f"{format_cost(result.cost)}  (bosun show {result.run_id})",
            file=sys.stderr,
        )
    return 0 if result.status == "succeeded" else 1


async def cmd_submit(rt: Runtime, args: argparse.Namespace) -> int:
    agent = load_agent(args.agent)
    run_id = await rt.submit(agent, args.input, **_run_options(args))
    print(dumps({"run_id": run_id, "status": "queued"}) if args.json else run_id)
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
    run = await rt.get_run(args.run_id)
    events = await rt.events(args.run_id)
    if args.json:
        print(dumps([event_to_dict(e, seq) for seq, e in events]))
    else:
        print(render(run, events))
    return 0


async def cmd_cancel(rt: Runtime, args: argparse.Namespace) -> int:
    if await rt.cancel(args.run_id):
        print(f"run {args.run_id} will stop at its next step boundary")
        return 0
    run = await rt.get_run(args.run_id)
    print(f"run {args.run_id} already finished ({run.status}); nothing to cancel")
    return 1


async def cmd_gc(rt: Runtime, args: argparse.Namespace) -> int:
    report = await rt.store.gc(time.time() - args.older_than)
    print(
        f"removed the journals of {report.runs} finished runs ({report.events} events, "
        f"{report.blobs} payloads): {report.bytes_freed / 1024:.1f} KiB freed; "
        "their summary rows remain in `bosun runs`"
    )
    return 0


# -- parser ------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bosun", description="Run AI agents durably: journaled, bounded, resumable."
    )
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
    p.set_defaults(handler=cmd_submit)

    p = sub.add_parser("worker", parents=[common], help="process queued and interrupted runs")
    p.add_argument("--concurrency", type=int, default=100)
    p.add_argument("--poll-interval", type=float, default=0.5)
    p.add_argument("--shutdown-grace", type=float, default=30.0)
    p.add_argument("--exit-when-idle", action="store_true", help="stop when nothing is left")
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
    p.set_defaults(handler=cmd_show)

    p = sub.add_parser("cancel", parents=[common], help="stop a run at its next step boundary")
    p.add_argument("run_id")
    p.set_defaults(handler=cmd_cancel)

    p = sub.add_parser("gc", parents=[common], help="remove journals of old finished runs")
    p.add_argument("--older-than", type=parse_duration, required=True, help="e.g. 30d, 12h")
    p.set_defaults(handler=cmd_gc)

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
    handler: Callable[[Runtime, argparse.Namespace], Awaitable[int]] = args.handler

    async def go() -> int:
        rt = Runtime(args.db or default_db_url(), lease_seconds=getattr(args, "lease_seconds", 30))
        async with rt:
            return await handler(rt, args)

    try:
        return asyncio.run(go())
    except BosunError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
