"""`bosun sessions` (list, show, fork, clear) and `bosun memory` (search, show, forget)."""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from typing import Any

from bosun.cli.common import dumps
from bosun.engine.runtime import Runtime
from bosun.memory import sessions
from bosun.observe.sessions import shown_turns


def _who(args: argparse.Namespace) -> str:
    return getattr(args, "by", None) or os.environ.get("BOSUN_USER") or os.getlogin()


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


async def cmd_sessions(rt: Runtime, args: argparse.Namespace) -> int:
    action = args.action or "list"
    if action == "list":
        found = await sessions.sessions(rt.store, args.tenant, limit=args.limit)
        if args.json:
            print(dumps([dataclasses.asdict(s) for s in found]))
            return 0
        if not found:
            print(f"no sessions in tenant {args.tenant}")
        for s in found:
            extra = f"  forked from {s.forked_from}" if s.forked_from else ""
            extra += f"  cleared {_when(s.cleared_at)}" if s.cleared_at else ""
            print(f"{s.name}  {s.runs} run(s)  last {_when(s.last_at)}{extra}")
        return 0
    if not args.name:
        print(f"error: bosun sessions {action} needs a session name")
        return 2
    if action == "show":
        turns = await sessions.turns(rt.store, args.tenant, args.name, time.time() + 1)
        turns = await shown_turns(rt.store, turns)
        if args.json:
            print(dumps([dataclasses.asdict(t) for t in turns]))
            return 0
        print(
            f"session {args.name} (tenant {args.tenant}): {len(turns)} turn(s) seen by its next run"
        )
        for t in turns:
            print(f"[{_when(t.created_at)}] {t.run_id}")
            print(f"  user: {t.input}")
            print(f"  agent: {t.output}")
        return 0
    if action == "fork":
        if not args.into:
            print("error: bosun sessions fork NAME --into NEW")
            return 2
        await sessions.fork(rt.store, args.tenant, args.name, args.into, actor=_who(args))
        print(f"forked session {args.name} into {args.into}")
        return 0
    await sessions.clear(rt.store, args.tenant, args.name, actor=_who(args))
    print(f"cleared session {args.name}: its next runs start afresh (earlier runs are kept)")
    return 0


def add_memory_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("sessions", parents=[common], help="conversations: list, show, fork, clear")
    p.add_argument("action", nargs="?", choices=["list", "show", "fork", "clear"])
    p.add_argument("name", nargs="?", help="the session")
    p.add_argument("--into", default=None, help="fork: the new session's name")
    p.add_argument("--tenant", default="default")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--by", default=None, help="who forks or clears (default: $BOSUN_USER)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_sessions)
