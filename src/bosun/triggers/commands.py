"""`bosun triggers list|pause|resume` (wired into `bosun.cli`): the shared rows every
process serving a triggers file reads, so a pause here stops the trigger everywhere."""

from __future__ import annotations

import argparse
import time
from typing import Any

import orjson

from bosun.errors import BosunError
from bosun.triggers import status
from bosun.triggers.spec import load_triggers


def add_trigger_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    t = sub.add_parser("triggers", help="list, pause and resume triggers (webhooks, schedules…)")
    tsub = t.add_subparsers(dest="triggers_command", required=True, metavar="ACTION")
    p = tsub.add_parser("list", parents=[common], help="triggers and their counters")
    p.add_argument("--triggers", default=None, metavar="FILE", help="include this file's too")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_list)
    for action, text in (("pause", "stop it starting runs"), ("resume", "start runs again")):
        p = tsub.add_parser(action, parents=[common], help=f"{text}, in every process")
        p.add_argument("name")
        p.set_defaults(handler=cmd_pause if action == "pause" else cmd_resume)


async def cmd_list(rt: Any, args: argparse.Namespace) -> int:
    file = load_triggers(args.triggers) if args.triggers else None
    shown = await status.listing(rt.store, file)
    if args.json:
        print(orjson.dumps(shown, option=orjson.OPT_INDENT_2).decode())
        return 0
    if not shown:
        print(
            "no triggers yet: start `bosun serve --triggers FILE` or `bosun worker --triggers FILE`"
        )
        return 0
    rows = [
        (
            "TRIGGER",
            "KIND",
            "STATE",
            "RECEIVED",
            "STARTED",
            "DEDUP",
            "REJECTED",
            "DEAD",
            "LAST TICK",
        )
    ]
    for t in shown:
        c = t["counters"]
        tick = (
            time.strftime("%Y-%m-%d %H:%M", time.localtime(t["last_tick"]))
            if t["last_tick"]
            else "-"
        )
        rows.append(
            (
                t["name"],
                t["kind"] or "-",
                "paused" if t["paused"] else "active",
                *(
                    str(c[k])
                    for k in ("received", "started", "deduplicated", "rejected", "dead_lettered")
                ),
                tick,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())
    return 0


async def _set(rt: Any, name: str, paused: bool) -> int:
    if not await rt.store.set_trigger_paused(name, paused):
        raise BosunError(f"no trigger {name!r} in {rt.store.url}: see `bosun triggers list`")
    print(f"trigger {name} {'paused' if paused else 'resumed'}")
    return 0


async def cmd_pause(rt: Any, args: argparse.Namespace) -> int:
    return await _set(rt, args.name, True)


async def cmd_resume(rt: Any, args: argparse.Namespace) -> int:
    return await _set(rt, args.name, False)
