"""Functions for the workflow SIGKILL tests: each execution appends a line to
`$RECOVERY_EFFECTS_DIR/effects.jsonl`; one named in `RECOVERY_HOLD` writes a
`started-<call id>` marker (slashes as `_`) and blocks until the process is killed."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from bosun import ToolContext, tool


def _effect_dir() -> Path:
    path = Path(os.environ["RECOVERY_EFFECTS_DIR"])
    path.mkdir(parents=True, exist_ok=True)
    return path


async def _effect(name: str, ctx: ToolContext, **details: object) -> None:
    line = {
        "tool": name,
        "call_id": ctx.call_id,
        "key": ctx.idempotency_key,
        "attempt": ctx.attempt,
        **details,
    }
    with open(_effect_dir() / "effects.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")
        f.flush()
        os.fsync(f.fileno())
    if name in os.environ.get("RECOVERY_HOLD", "").split(","):
        marker = _effect_dir() / ("started-" + ctx.call_id.replace("/", "_"))
        marker.write_text(str(os.getpid()))
        await asyncio.sleep(600)  # until SIGKILL


@tool(effect="read", idempotent=True)
async def lookup(ref: str, ctx: ToolContext) -> dict:
    """Look an order up."""
    await _effect("lookup", ctx, ref=ref)
    return {"ref": ref, "amount": 5}


@tool(effect="write", idempotent=True)
async def save_note(text: str, ctx: ToolContext) -> dict:
    """An upsert keyed by the idempotency key."""
    await _effect("save_note", ctx, text=text)
    return {"saved": text}


@tool(effect="irreversible", idempotent=False)
async def charge(amount: float, ctx: ToolContext) -> dict:
    """Must never run twice."""
    await _effect("charge", ctx, amount=amount)
    return {"charged": amount}
