"""Tools that return durable waits, for the SIGKILL tests of waits (test_sigkill_waits.py)."""

from __future__ import annotations

from bosun import Wait, tool


@tool(effect="read", idempotent=True)
def await_signal(name: str) -> Wait:
    """Wait for a named signal."""
    return Wait(signal=name)


@tool(effect="read", idempotent=True)
def await_child(run_id: str) -> Wait:
    """Wait for another run to end."""
    return Wait(child=run_id)


@tool(effect="read", idempotent=True)
def nap(seconds: float) -> Wait:
    """Sleep durably: no worker holds the run meanwhile."""
    return Wait(timer=seconds, on_deadline="rested")
