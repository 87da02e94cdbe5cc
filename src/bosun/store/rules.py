"""Business rules the stores apply, as pure functions both backends call.

A rule written in SQL is written twice (once per dialect) and read by nobody: here it is
written once, in Python, and tested without a database. The stores only fetch the facts a
rule needs and write what it decides, inside their own transactions.
"""

from __future__ import annotations

from bosun.errors import StoreError
from bosun.store.records import (
    APPROVED,
    DENIED,
    ESCALATED,
    EXPIRED,
    PENDING,
    QUEUED,
    WAITING_APPROVAL,
    ApprovalRecord,
)


def check_decision(decision: str) -> None:
    """A person resolves an approval as approved or denied; expiry and escalation are the
    store's own outcomes, never a caller's."""
    if decision not in (APPROVED, DENIED):
        raise StoreError(f"an approval is resolved as approved or denied, not {decision!r}")


def requeued_status(run_status: str, pending_approvals: int) -> str | None:
    """The status a run takes once its approvals change, or None to leave it be.

    A run parked for approval goes straight back to the queue (so a worker resumes it)
    when none of its approvals is pending any more: the last one was resolved, or every
    one was resolved before the run even parked. Any other run is left alone."""
    if run_status == WAITING_APPROVAL and pending_approvals == 0:
        return QUEUED
    return None


def expiry_outcome(approval: ApprovalRecord) -> str:
    """What a pending approval past its expiry becomes: `escalated` when it says so and has
    someone to escalate to, else `expired` (which denies the call)."""
    if approval.status != PENDING:
        raise ValueError(f"approval {approval.id} is {approval.status}, not pending")
    if approval.on_expiry == "escalate" and approval.escalate_to:
        return ESCALATED
    return EXPIRED


def escalation_id(approval_id: str) -> str:
    """The id of the approval that replaces an escalated one: stable (an expiry sweep run
    twice, by two workers, cannot make two) and readable (it names what it escalates)."""
    return f"{approval_id}.esc"
