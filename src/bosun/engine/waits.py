"""Durable waits in the engine: a tool's `bosun.Wait` becomes a journaled request, a woken
run journals the result once, and workers sweep the waits nobody else will settle.

How a wait moves (the store's half is `store/waits_rows.py`):

1. A tool returns `Wait(...)`. The loop journals `WaitRequested` (the store creates the wait's
   row in that append's transaction) and, at the end of the step, `RunWaiting`: the run is
   `waiting`, its lease released, nothing of it in memory.
2. Something delivers: `deliver_signal`, a child's last append, `complete_remote`, or the
   sweep below at a deadline. Each is the store's compare-and-set on the wait's row followed
   by the one wake path (the run is queued once nothing it waits on is pending). Of two
   racing deliveries one wins; the other changes nothing.
3. A worker claims the queued run. The loop finds the call's wait settled and journals
   `WaitResolved` and the call's result (`collect`). Only the lease holder appends, fenced,
   so the result enters the journal once: a worker killed before that commit leaves the
   wait settled and the journal without it, and the next worker journals it; one killed
   after leaves the events, and the next worker's state has the call closed.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence

from bosun.engine.state import CallState
from bosun.govern.governor import kill_scopes
from bosun.journal.events import (
    Event,
    RunResumed,
    ToolFailed,
    ToolFinished,
    ToolProgress,
    WaitRequested,
    WaitResolved,
)
from bosun.spec.vocab import TERMINAL_STATUSES, RunStatus, WaitKind, WaitStatus
from bosun.spec.wait import Wait
from bosun.store.base import RunRecord, Store
from bosun.store.waits_rows import WaitRecord

log = logging.getLogger("bosun.engine.waits")


def requested(call: CallState, wait: Wait, now: float) -> WaitRequested:
    """The journal event for a `Wait` a call's tool returned."""
    return WaitRequested(
        wait_id="wait_" + uuid.uuid4().hex[:16],
        call_id=call.call_id,
        tool=call.tool,
        wait_kind=wait.kind,
        key=wait.key,
        deadline=wait.deadline_at(now),
        on_deadline=wait.on_deadline,
    )


def any_parked(calls: Iterable[CallState]) -> bool:
    """Whether a call is parked on a pending wait (a plain loop: this runs on every pass,
    and almost every pass has none)."""
    for call in calls:  # noqa: SIM110 (a generator costs more)
        if call.wait_id and call.wait_status == WaitStatus.PENDING:
            return True
    return False


async def known(store: Store, run_id: str, calls: Sequence[CallState]) -> dict[str, WaitRecord]:
    """The waits the run's parked calls are on that have settled, by id, read once per pass
    (a parent of a thousand children reads the few that ended since its last pass, not a
    thousand rows per wake); a parked call's wait missing from it is still pending."""
    parked = {c.wait_id for c in calls if c.wait_status == WaitStatus.PENDING and c.wait_id}
    if not parked:
        return {}
    if len(parked) == 1:
        record = await store.get_wait(next(iter(parked)))
        settled = record is not None and record.status != WaitStatus.PENDING
        return {record.id: record} if settled else {}  # type: ignore[union-attr]
    return {w.id: w for w in await store.settled_waits(run_id, parked)}


async def collect(
    store: Store,
    call: CallState,
    known: dict[str, WaitRecord] | None = None,
    *,
    trusted: bool = True,
) -> list[Event]:
    """The events that close a call whose wait has settled ([] while it is pending). With
    `known` (this pass's `known()`), a wait missing from it is pending; else it is read.
    `trusted` is the call's tool's: a result from outside (a remote agent's answer) is
    untrusted content for the injection rules exactly when the tool's own would be."""
    if known is not None:
        record = known.get(call.wait_id or "")
    else:
        record = await store.get_wait(call.wait_id or "")
    if record is None or record.status == WaitStatus.PENDING:
        return []
    resolved = WaitResolved(
        wait_id=record.id, call_id=call.call_id, status=record.status, result=record.result
    )
    if record.status == WaitStatus.CANCELLED:
        return [
            resolved,
            ToolFailed(
                call_id=call.call_id,
                tool=call.tool,
                error_type="wait_cancelled",
                message=f"the {record.kind} wait was cancelled before it settled",
            ),
        ]
    if record.kind == WaitKind.REMOTE and _is_outcome(record.result):
        return [resolved, *remote_outcome(call, record.result[REMOTE_OUTCOME], trusted)]
    return [
        resolved,
        ToolFinished(
            call_id=call.call_id,
            tool=call.tool,
            result=record.result,
            duration_ms=0.0,
            trusted=trusted,
        ),
    ]


# A remote wait settled with `{"remote_outcome": {...}}` (the A2A watcher does;
# `complete_remote` may) says more than a result: `result` (the call's result) or `failed`
# (`{"error_type", "message"}`: the call fails), and `progress` (what the task reported
# while the run was parked: `[{"message", "at"}]`, journaled as `ToolProgress` first).
REMOTE_OUTCOME = "remote_outcome"


def _is_outcome(result: object) -> bool:
    return (
        isinstance(result, dict)
        and len(result) == 1
        and isinstance(result.get(REMOTE_OUTCOME), dict)
    )


def remote_outcome(call: CallState, outcome: dict, trusted: bool = True) -> list[Event]:
    """The events closing a call from a remote task's outcome (see `REMOTE_OUTCOME`)."""
    events: list[Event] = []
    progress = outcome.get("progress")
    for i, entry in enumerate(progress if isinstance(progress, list) else []):
        if isinstance(entry, dict):
            events.append(
                ToolProgress(
                    call_id=call.call_id,
                    tool=call.tool,
                    progress=float(i + 1),
                    total=None,
                    message=str(entry.get("message") or "")[:200],
                    reports=1,
                )
            )
    failed = outcome.get("failed")
    if isinstance(failed, dict):
        events.append(
            ToolFailed(
                call_id=call.call_id,
                tool=call.tool,
                error_type=str(failed.get("error_type") or "remote_failed"),
                message=str(failed.get("message") or "the remote task failed"),
            )
        )
    else:
        events.append(
            ToolFinished(
                call_id=call.call_id,
                tool=call.tool,
                result=outcome.get("result"),
                duration_ms=0.0,
                trusted=trusted,
            )
        )
    return events


def only_wait_results(events: Sequence[Event], replayable: Collection[str] = ()) -> bool:
    """Whether `events` (a pass's uncommitted ones) are only what collecting settled waits
    journals, the drive's `RunResumed`, and the results of `replayable` calls: every result
    among them is one a wait's row still holds or a call that may run again, so they may be
    committed with the next model answer (`loop.py`, step 4)."""
    resolved = set()
    for event in events:
        if isinstance(event, WaitResolved):
            resolved.add(event.call_id)
        elif isinstance(event, ToolFinished | ToolFailed | ToolProgress):
            if event.call_id not in resolved and event.call_id not in replayable:
                return False
        elif not isinstance(event, RunResumed):
            return False
    return True


def waiting_reason(approvals: int, waits: int) -> str:
    parts = [f"{approvals} approval(s)"] if approvals else []
    parts += [f"{waits} wait(s)"] if waits else []
    return "waiting for " + " and ".join(parts)


async def sweep(store: Store, now: float) -> int:
    """Settle the waits with an answer and nobody to deliver it: a timer that has fired, a
    deadline that has passed (with the wait's declared outcome), a child that has ended
    while its wake was missed. Safe in any number of workers at once (compare-and-set);
    returns how many this call settled."""
    settled = 0
    for wait in await store.due_waits(now):
        if wait.kind == WaitKind.CHILD:
            outcome = await store.child_outcome(wait.key)
            if outcome is not None and outcome["status"] in TERMINAL_STATUSES:
                settled += await store.settle_wait(wait.id, outcome)
                continue
        if wait.deadline is None or wait.deadline > now:
            continue
        # A timer firing is its normal end; any other wait at its deadline has expired.
        status = WaitStatus.SETTLED if wait.kind == WaitKind.TIMER else WaitStatus.EXPIRED
        settled += await store.settle_wait(wait.id, wait.on_deadline, status=status)
    if settled:
        log.info("settled %d due wait(s)", settled)
    return settled


async def wake_killed(
    store: Store, lineage_of: Callable[[RunRecord], Awaitable[Sequence[str]]]
) -> int:
    """Queue the parked runs a kill switch covers (by tenant, agent, `run:ID` of the run or
    an ancestor, or `global`), so that a worker's loop ends them as `killed` at once
    instead of when what they wait for arrives, which may be never. Tool switches stop a
    tool's calls, not a run, so they wake nothing. One query when no switch is set, which
    is nearly always; returns how many runs this call woke."""
    scopes = {k.scope for k in await store.kill_switches() if not k.scope.startswith("tool:")}
    if not scopes:
        return 0
    woken = 0
    for status in (RunStatus.WAITING, RunStatus.WAITING_APPROVAL):
        for run in await store.list_runs(status=status, limit=KILL_SWEEP_LIMIT):
            covered = kill_scopes(run.tenant, run.agent, None, await lineage_of(run))
            if scopes.intersection(covered) and await store.wake_for_kill(run.id):
                woken += 1
    if woken:
        log.info("woke %d parked run(s) covered by a kill switch", woken)
    return woken


# Parked runs looked at per status per sweep; a larger backlog is worked through over the
# following sweeps (each woken run leaves the parked set).
KILL_SWEEP_LIMIT = 500


__all__ = [
    "REMOTE_OUTCOME",
    "any_parked",
    "collect",
    "known",
    "only_wait_results",
    "remote_outcome",
    "requested",
    "sweep",
    "waiting_reason",
    "wake_killed",
]
