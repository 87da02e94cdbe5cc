"""Tools for the fan-out tests (importable by reference from worker processes)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

from bosun import ToolContext, tool

# How many `overlap` calls are inside their body now, and the most there ever were at once
# (read by the in-process test through the tool's module globals).
INSIDE = [0]
PEAK = [0]


@tool(effect="read", idempotent=True)
async def overlap(order: str) -> dict:
    """Stay inside until four calls are inside at once (or about two seconds pass)."""
    INSIDE[0] += 1
    PEAK[0] = max(PEAK[0], INSIDE[0])
    try:
        for _ in range(200):
            if PEAK[0] >= 4:
                break
            await asyncio.sleep(0.01)
    finally:
        INSIDE[0] -= 1
    return {"order": order}


def _log(what: str, ctx: ToolContext, **extra: object) -> None:
    folder = Path(os.environ["FANOUT_EFFECTS_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    entry = {"tool": what, "run": ctx.run_id, "call": ctx.call_id, "attempt": ctx.attempt}
    with open(folder / "effects.jsonl", "a") as out:
        out.write(json.dumps(entry | extra) + "\n")


@tool(effect="read", idempotent=True)
def note(item: str, ctx: ToolContext) -> dict:
    """Record that it ran (FANOUT_EFFECTS_DIR/effects.jsonl)."""
    _log("note", ctx, item=item)
    return {"noted": item}


@tool(effect="read", idempotent=True)
def hold(item: str, ctx: ToolContext) -> dict:
    """Record that it began; with FANOUT_HOLD set, block (until the process is killed)."""
    _log("hold", ctx, item=item)
    while os.environ.get("FANOUT_HOLD"):
        time.sleep(0.05)
    return {"held": item}


@tool(effect="irreversible")
def charge(amount: float, ctx: ToolContext) -> dict:
    """Charge the customer. Cannot be undone."""
    _log("charge", ctx, amount=amount)
    return {"charged": amount}
