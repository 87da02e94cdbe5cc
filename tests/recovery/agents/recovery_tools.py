"""Tools for the crash-recovery tests. Each execution appends one JSON line to
`$RECOVERY_EFFECTS_DIR/effects.jsonl` (tool, call id, idempotency key, attempt, code
version), so a test counts exactly how many times each side effect happened.

Two ways to interrupt a tool, both after its effect line is written:

- `RECOVERY_HOLD=tool_a,tool_b` (subprocess tests): write `started-<call_id>` in the
  effects directory, then block until the process is killed. The test waits for the
  marker, then sends SIGKILL: no timing guesses.
- `RECOVERY_CRASH=tool_a` (in-process tests): raise `SimulatedCrash`, a BaseException
  the engine does not handle, so the run stops exactly where a dead process would.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

from bosun import ToolContext, tool

CODE_VERSION = "v1"  # tests rewrite this line to show which code executed a call


class SimulatedCrash(BaseException):
    """Stands in for the process dying in the middle of a tool call."""


def effects_dir() -> Path:
    path = Path(os.environ["RECOVERY_EFFECTS_DIR"])
    path.mkdir(parents=True, exist_ok=True)
    return path


def _names(var: str) -> set[str]:
    return {n for n in os.environ.get(var, "").split(",") if n}


def _write_effect(name: str, ctx: ToolContext, details: dict[str, object]) -> bool:
    """Append the effect line; True if the test asked this tool to hold (RECOVERY_HOLD)."""
    line = {
        "tool": name,
        "call_id": ctx.call_id,
        "key": ctx.idempotency_key,
        "attempt": ctx.attempt,
        "code": CODE_VERSION,
        **details,
    }
    with open(effects_dir() / "effects.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")
        f.flush()
        os.fsync(f.fileno())
    if name in _names("RECOVERY_HOLD"):
        (effects_dir() / f"started-{ctx.call_id}").write_text(str(os.getpid()))
        return True
    return False


def _released(ctx: ToolContext) -> bool:
    return (effects_dir() / f"release-{ctx.call_id}").exists()


async def _effect(name: str, ctx: ToolContext, **details: object) -> None:
    if _write_effect(name, ctx, details):
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and not _released(ctx):  # until SIGKILL or release
            await asyncio.sleep(0.05)
    if name in _names("RECOVERY_CRASH"):
        raise SimulatedCrash(f"process died inside {name} ({ctx.call_id})")


def _effect_sync(name: str, ctx: ToolContext, **details: object) -> None:
    """The same, for a plain (sync) tool that runs on a thread of the tool pool."""
    if _write_effect(name, ctx, details):
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and not _released(ctx):
            time.sleep(0.05)


@tool(effect="write", idempotent=True)
async def save_note(text: str, ctx: ToolContext) -> dict:
    """Save a note on the customer's record (an upsert keyed by the idempotency key)."""
    await _effect("save_note", ctx, text=text)
    return {"saved": text, "code": CODE_VERSION}


@tool(effect="write", idempotent=True, timeout=900)
async def sync_slow(ref: str, ctx: ToolContext) -> dict:
    """Push a record to a slow partner system that deduplicates by idempotency key."""
    await _effect("sync_slow", ctx, ref=ref)
    return {"synced": ref, "code": CODE_VERSION}


@tool(effect="irreversible", idempotent=False)
async def charge(amount: float, ctx: ToolContext) -> dict:
    """Charge the customer's card. Cannot be undone and must never run twice."""
    await _effect("charge", ctx, amount=amount)
    return {"charged": amount, "code": CODE_VERSION}


@tool(effect="irreversible", idempotent=False, timeout=900)
async def charge_slow(amount: float, ctx: ToolContext) -> dict:
    """Charge the card through a slow payment gateway. Must never run twice."""
    await _effect("charge_slow", ctx, amount=amount)
    return {"charged": amount, "code": CODE_VERSION}


@tool(effect="read", idempotent=True)
async def lookup(ref: str, ctx: ToolContext) -> dict:
    """Look up an order."""
    await _effect("lookup", ctx, ref=ref)
    return {"ref": ref, "status": "delivered", "code": CODE_VERSION}


@tool(effect="irreversible", idempotent=False, timeout=900)
def charge_sync(amount: float, ctx: ToolContext) -> dict:
    """Charge the card through a blocking client library (a sync tool, run on a thread)."""
    _effect_sync("charge_sync", ctx, amount=amount)
    return {"charged": amount, "code": CODE_VERSION}
