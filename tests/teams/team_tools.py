"""Tools for the agents-as-tools tests (importable by reference from worker processes)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from bosun import ToolContext, Wait, tool


@tool(effect="read", idempotent=True)
def await_go() -> Wait:
    """Wait for the `go` signal."""
    return Wait(signal="go")


@tool(effect="read", idempotent=True)
def probe(step: str, ctx: ToolContext) -> dict:
    """Record that it ran (in TEAM_EFFECTS_DIR/effects.jsonl); idempotent, so a resumed
    child may run it again."""
    folder = Path(os.environ["TEAM_EFFECTS_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "effects.jsonl", "a") as out:
        out.write(json.dumps({"step": step, "run": ctx.run_id, "call": ctx.call_id}) + "\n")
    return {"probed": step}
