"""`bosun sessions` (list, show, fork, clear) and `bosun memory` (search, show, forget)."""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import os
import time
from typing import Any

from bosun.cli.common import dumps
from bosun.engine.runtime import Runtime
from bosun.memory import sessions
from bosun.observe.sessions import shown_turns


def _who(args: argparse.Namespace) -> str:
    return getattr(args, "by", None) or os.environ.get("BOSUN_USER") or getpass.getuser()


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


def _scope(text: str | None) -> list[tuple[str, str]] | None:
    if not text:
        return None
    kind, _, ident = text.partition("/")
    return [(kind, ident or "-")]


def _fact_line(f: dict[str, Any]) -> str:
    key = f"{f['subject']}.{f['attribute']}" if f["attribute"] else "(note)"
    trust = "trusted" if f["trusted"] else "untrusted"
    return (
        f"{f['id']}  {f['scope']}  {key} = {f['value']!r}  from {f['source']} ({trust}),"
        f" observed {_when(f['observed_at'])}, run {f['run_id'] or '-'}"
    )


async def cmd_memory(rt: Runtime, args: argparse.Namespace) -> int:
    memory = rt.memory
    if args.action == "search":
        found = await memory.recall.search(
            tenant=args.tenant,
            scopes=_scope(args.scope),
            query=args.target,
            limit=args.limit,
            mode=args.mode,
            max_age=args.max_age,
        )
        if args.json:
            print(dumps([r.shown() for r in found]))
            return 0
        if not found:
            print("nothing remembered matches")
        for r in found:
            shown = r.shown()
            print(_fact_line(shown))
            print(f"    score {shown['score']}: {shown['why']}" + ("  STALE" if r.stale else ""))
            for c in shown["conflicts"]:
                print(f"    disagrees: {c['value']!r} from {c['source']} ({c['id']})")
        return 0
    fact = await memory.facts.get(args.tenant, args.target)
    if args.action == "show":
        history = [f.shown() for f in await memory.facts.history(args.tenant, fact)]
        if args.json:
            print(dumps({**fact.shown(), "history": history}))
            return 0
        print(_fact_line(fact.shown()))
        for h in history:
            if h["id"] != fact.id:
                print(
                    f"    earlier/later: {h['value']!r} ({h['id']}, superseded by {h['superseded_by']})"
                )
        return 0
    await memory.forget(args.tenant, fact.id, actor=_who(args), reason=args.reason or "")
    print(f"forgot {fact.id} (its text index and embeddings too); the audit trail records it")
    return 0


def add_memory_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("memory", parents=[common], help="long-term memory: search, show, forget")
    p.add_argument("action", choices=["search", "show", "forget"])
    p.add_argument("target", help="search: the query; show/forget: the memory id")
    p.add_argument("--tenant", default="default")
    p.add_argument("--scope", default=None, help="only this scope, e.g. user/ada, team/RUN_ID")
    p.add_argument("--mode", choices=["lexical", "vector", "hybrid"], default="hybrid")
    p.add_argument("--max-age", type=float, default=None, help="seconds: older is stale")
    p.add_argument("--limit", type=int, default=10)
    p.add_argument("--reason", default=None, help="forget: why (audited)")
    p.add_argument("--by", default=None, help="who forgets (default: $BOSUN_USER)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_memory)

    p = sub.add_parser("sessions", parents=[common], help="conversations: list, show, fork, clear")
    p.add_argument("action", nargs="?", choices=["list", "show", "fork", "clear"])
    p.add_argument("name", nargs="?", help="the session")
    p.add_argument("--into", default=None, help="fork: the new session's name")
    p.add_argument("--tenant", default="default")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--by", default=None, help="who forks or clears (default: $BOSUN_USER)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_sessions)
