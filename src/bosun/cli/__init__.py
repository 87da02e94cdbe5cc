"""The `bosun` command. Every command takes `--db` (SQLite path or postgresql:// URL;
default `BOSUN_DB`, else ./bosun.db). Exit codes: 0 ok, 1 the run did not succeed, 2 error.

The commands live beside this module by layer: `runs` (the run lifecycle), `govern`
(approvals, kill switches, rollback, audit, policy), and the observe and server layers'
own `commands` modules."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable

from bosun import __version__
from bosun.cli.common import parse_duration, parse_tag
from bosun.cli.govern import add_govern_commands, add_policy_command
from bosun.cli.memory import add_memory_commands
from bosun.cli.routing import add_routing_commands
from bosun.cli.runs import add_run_commands, cmd_run, cmd_worker, tree_lines
from bosun.engine.runtime import Runtime
from bosun.errors import BosunError
from bosun.server.commands import add_server_commands
from bosun.server.mcp_serve.commands import add_mcp_commands
from bosun.store import default_db_url
from bosun.triggers.commands import add_trigger_commands
from bosun.workflow.commands import add_workflow_commands

__all__ = ["build_parser", "main", "parse_duration", "parse_tag", "tree_lines"]


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
    add_run_commands(sub, common)
    add_govern_commands(sub, common)
    add_memory_commands(sub, common)  # sessions, memory
    add_server_commands(sub, common)  # serve, keys, tenants
    add_mcp_commands(sub, common)  # mcp serve
    add_trigger_commands(sub, common)  # triggers list|pause|resume
    add_routing_commands(sub, common)  # feedback, router
    add_policy_command(sub)
    add_workflow_commands(sub, common)  # workflow validate/run, task list/answer

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
        embeddings = os.environ.get("BOSUN_EMBEDDINGS")  # vector recall (docs/memory.md)
        rt = Runtime(args.db or default_db_url(), embedder=embeddings, **options)
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
