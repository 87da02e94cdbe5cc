"""Business rules the stores apply, as pure functions both backends call.

A rule written in SQL is written twice (once per dialect) and read by nobody: here it is
written once, in Python, and tested without a database. The stores only fetch the facts a
rule needs and write what it decides, inside their own transactions.
"""

from __future__ import annotations

from bosun.errors import StoreError
from bosun.spec.vocab import PARKED_STATUSES
from bosun.store.records import (
    APPROVED,
    DENIED,
    ESCALATED,
    EXPIRED,
    PENDING,
    ApprovalRecord,
)


def wakes(status: str, pending_waits: int, answered_children: int = 0) -> bool:
    """The wake rule: a parked run (waiting for approvals or durable waits) goes back to the
    queue once nothing it waits on is pending, or as soon as one of its child runs has
    ended (`answered_children`: child waits settled that its journal has not taken in yet),
    so a parent journals each child's result as it arrives, and can act on a failure
    (`on_child_failure`), while the siblings still run; it then parks again on the rest.
    A run that is not parked (running, paused, finished) is left alone: whoever holds it
    sees its waits settled at its next commit."""
    return status in PARKED_STATUSES and (pending_waits == 0 or answered_children > 0)


def check_decision(decision: str) -> None:
    """A person resolves an approval as approved or denied; expiry and escalation are the
    store's own outcomes, never a caller's."""
    if decision not in (APPROVED, DENIED):
        raise StoreError(f"an approval is resolved as approved or denied, not {decision!r}")


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
