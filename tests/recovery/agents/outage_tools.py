"""The agent and tool of the database-outage tests (test_store_outage.py), run by a real
`bosun serve` in the test's own process.

`transfer` moves money: irreversible and not idempotent, so running it twice is the bug
these tests look for, and a result the journal lost would park its run instead of letting
it succeed. Each execution appends one line to `EFFECTS` (fsynced) before anything else,
then waits at the gate of its step (in the worker's thread pool, not on the event loop)
until the test opens it. So the test cuts the database while every run is provably inside
a tool call, and lets the results come back while it is down: no sleeps racing the worker.
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from pathlib import Path

from bosun import Agent, ToolContext, tool

EFFECTS: Path | None = None  # set by the test: where executions are recorded
RECEIPT_BYTES = 32 * 1024  # a result too big to fit in a page a full database still has free
GATE_TIMEOUT = 120.0  # a gate the test never opens fails the call instead of hanging forever


class Gates:
    """One gate per step: calls arrive and wait until the test opens their step's gate."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._arrived: Counter[int] = Counter()
        self._left: Counter[int] = Counter()
        self._open: set[int] = set()

    def pass_through(self, step: int) -> None:
        with self._cond:
            self._arrived[step] += 1
            self._cond.notify_all()
            if not self._cond.wait_for(lambda: step in self._open, GATE_TIMEOUT):
                raise RuntimeError(f"the test never opened gate {step}")
            self._left[step] += 1
            self._cond.notify_all()

    def wait_arrived(self, step: int, n: int, timeout: float = 60.0) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self._arrived[step] >= n, timeout):
                raise AssertionError(f"{self._arrived[step]} of {n} calls reached gate {step}")

    def wait_left(self, step: int, n: int, timeout: float = 60.0) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self._left[step] >= n, timeout):
                raise AssertionError(f"{self._left[step]} of {n} calls left gate {step}")

    def open(self, *steps: int) -> None:
        with self._cond:
            self._open.update(steps)
            self._cond.notify_all()

    def reset(self) -> None:
        with self._cond:
            self._arrived.clear()
            self._left.clear()
            self._open.clear()


GATES = Gates()


@tool(effect="irreversible", idempotent=False, timeout=GATE_TIMEOUT + 30)
def transfer(step: int, amount: float, ctx: ToolContext) -> dict:
    """Move money to the supplier's account. Cannot be undone and must never run twice."""
    assert EFFECTS is not None, "set outage_tools.EFFECTS first"
    line = {"run_id": ctx.run_id, "call_id": ctx.call_id, "step": step, "attempt": ctx.attempt}
    with open(EFFECTS, "a", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")
        f.flush()
        os.fsync(f.fileno())
    GATES.pass_through(step)
    return {"moved": amount, "step": step, "receipt": os.urandom(RECEIPT_BYTES // 2).hex()}


@tool(effect="write", idempotent=True, timeout=GATE_TIMEOUT + 30)
def sync_ledger(step: int, ctx: ToolContext) -> dict:
    """Push the order to the ledger, which deduplicates by idempotency key."""
    assert EFFECTS is not None, "set outage_tools.EFFECTS first"
    line = {"run_id": ctx.run_id, "call_id": ctx.call_id, "step": step, "attempt": ctx.attempt,
            "key": ctx.idempotency_key}  # fmt: skip
    with open(EFFECTS, "a", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")
        f.flush()
        os.fsync(f.fileno())
    GATES.pass_through(step)
    return {"synced": step, "receipt": os.urandom(RECEIPT_BYTES // 2).hex()}


def executions() -> list[dict]:
    assert EFFECTS is not None
    if not EFFECTS.exists():
        return []
    return [json.loads(line) for line in EFFECTS.read_text().splitlines() if line.strip()]


STEPS = 3

# Three transfers, one per model turn, then an answer.
transfers = Agent(
    name="transfers",
    instructions="Pay the supplier in three instalments.",
    model={
        "provider": "scripted",
        "turns": [
            *(
                {"tool_calls": [{"name": "transfer", "arguments": {"step": s, "amount": 10.0 * s}}]}
                for s in range(1, STEPS + 1)
            ),
            {"content": "paid in three instalments"},
        ],
    },
    tools=[transfer],
)

# One idempotent sync, then an answer.
syncs = Agent(
    name="syncs",
    instructions="Sync the order to the ledger.",
    model={
        "provider": "scripted",
        "turns": [
            {"tool_calls": [{"name": "sync_ledger", "arguments": {"step": 1}}]},
            {"content": "synced"},
        ],
    },
    tools=[sync_ledger],
)
