"""Settle a run parked as `needs_attention`: a person checked the target system and says
whether the interrupted call took effect. The decision is journaled (and audited), the
call is closed with that outcome, and the run goes back to the queue.

A run can also park with no call open (it was resumed again and again without progress):
once the cause is fixed, `retry` journals who let it go on and queues it again."""

from __future__ import annotations

from typing import Any

from bosun.engine.journal import JournalWriter
from bosun.engine.state import rebuild
from bosun.errors import BosunError
from bosun.journal.events import (
    AttentionResolved,
    Event,
    RunNeedsAttention,
    ToolFailed,
    ToolFinished,
)
from bosun.store.base import NEEDS_ATTENTION


async def resolve(
    journal: JournalWriter,
    run_id: str,
    *,
    owner: str,
    by: str,
    result: Any = None,
    failed: str | None = None,
    call_id: str | None = None,
    retry: bool = False,
    lease_seconds: float = 30.0,
) -> str:
    """Close the interrupted call as done (with `result`) or not done (`failed` says why
    the model should know), or with `retry` queue a run parked with no open call again;
    returns the call id ("" for a retry)."""
    store = journal.store
    run = await store.get_run(run_id)
    if run is None:
        raise BosunError(f"no run {run_id!r}")
    if run.status != NEEDS_ATTENTION:
        raise BosunError(f"run {run_id} is {run.status}, not needs_attention: nothing to resolve")
    if not await store.acquire(run_id, owner, lease_seconds=lease_seconds):
        raise BosunError(f"run {run_id} is leased by another process right now; try again")
    try:
        events = await store.events(run_id)
        state = rebuild(run_id, events)
        parked = [e for _, e in events if isinstance(e, RunNeedsAttention)]
        target = call_id or (parked[-1].call_id if parked else None)
        call = state.open_calls.get(target or "")
        if retry:
            if call is not None:
                raise BosunError(
                    f"run {run_id} parked on call {call.call_id} ({call.tool}): say whether it"
                    " took effect, with --result JSON or --not-done REASON, instead of --retry"
                )
            new: list[Event] = [
                AttentionResolved(call_id="", tool="", outcome="retry", by=by, note="retried")
            ]
            await journal.extend(state, new, owner=owner)
            return ""
        if call is None:
            open_ids = ", ".join(state.open_calls) or "none"
            raise BosunError(
                f"run {run_id} has no open call {target!r} to resolve (open calls: {open_ids})"
            )
        done = failed is None
        new = [
            AttentionResolved(
                call_id=call.call_id,
                tool=call.tool,
                outcome="done" if done else "not_done",
                by=by,
                note="" if done else failed or "",
            ),
            ToolFinished(call_id=call.call_id, tool=call.tool, result=result, duration_ms=0.0)
            if done
            else ToolFailed(
                call_id=call.call_id,
                tool=call.tool,
                error_type="not_executed",
                message=f"this call did not take effect ({by}: {failed})",
            ),
        ]
        await journal.extend(state, new, owner=owner)
        return call.call_id
    finally:
        await store.release(run_id, owner)
