"""The store's records: plain dataclasses that the store hands out and takes in.

Kept apart from the interfaces (`bosun.store.base`) so that a reader finds what a run,
an approval or a key *is* in one place; `bosun.store.base` and `bosun.store` re-export
every name, so `from bosun.store.base import RunRecord` keeps working.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from bosun.errors import StoreError
from bosun.journal.audit import AuditEntry
from bosun.spec.vocab import TERMINAL_STATUSES as TERMINAL
from bosun.spec.vocab import ApprovalStatus, RunStatus
from bosun.store.observing import Finding, MetricsSnapshot, UsageRow

# Run and approval statuses, re-exported from the one vocabulary (`bosun.spec.vocab`).
QUEUED = RunStatus.QUEUED
RUNNING = RunStatus.RUNNING
SUCCEEDED = RunStatus.SUCCEEDED
FAILED = RunStatus.FAILED
CANCELLED = RunStatus.CANCELLED
LIMIT_EXCEEDED = RunStatus.LIMIT_EXCEEDED
NEEDS_ATTENTION = RunStatus.NEEDS_ATTENTION
WAITING_APPROVAL = RunStatus.WAITING_APPROVAL
WAITING = RunStatus.WAITING
PAUSED = RunStatus.PAUSED
KILLED = RunStatus.KILLED
TERMINAL_STATUSES = TERMINAL
RUN_STATUSES = frozenset(RunStatus)

PENDING = ApprovalStatus.PENDING
APPROVED = ApprovalStatus.APPROVED
DENIED = ApprovalStatus.DENIED
EXPIRED = ApprovalStatus.EXPIRED
ESCALATED = ApprovalStatus.ESCALATED

# Event payloads whose JSON is larger than this are stored once in `blobs`, by hash.
BLOB_THRESHOLD = 8 * 1024


@dataclass(slots=True)
class RunRecord:
    """A run's summary row. Everything but the lease columns can be rebuilt from the journal."""

    id: str
    agent: str
    agent_version: str
    input: str
    spec: dict[str, Any]
    status: str = QUEUED
    tenant: str = "default"
    user: str | None = None
    session: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    created_at: float = 0.0
    updated_at: float = 0.0
    finished_at: float | None = None
    steps: int = 0
    tool_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    reason: str | None = None
    output: str | None = None
    last_seq: int = 0
    lease_owner: str | None = None
    lease_expires_at: float | None = None
    cancel_requested: bool = False
    pause_requested: bool = False
    # Claims in a row that found the journal where the previous claim left it: attempts
    # that recorded nothing (a worker killed, an error before the first commit).
    claims: int = 0
    # Run trees: a top-level run's parent is None and its root is itself.
    parent_id: str | None = None
    root_id: str | None = None
    # A caller-supplied key: creating a run with a key its tenant has used returns that run.
    idempotency_key: str | None = None
    # Tree budgets (`engine/budgets.py`, `store/budgets_sql.py`): the run's own limits as
    # the tree counts them (None: unlimited) and its wall-clock deadline; what it holds of
    # its parent's budget (None: nothing held, or settled); what it has committed to its
    # children (their reservations while they run, their spend once they finish).
    limit_steps: int | None = None
    limit_tokens: int | None = None
    limit_cost: float | None = None
    deadline: float | None = None
    reserved_steps: int | None = None
    reserved_tokens: int | None = None
    reserved_cost: float | None = None
    child_steps: int = 0
    child_tokens: int = 0
    child_cost: float = 0.0


@dataclass(slots=True)
class RunSummary:
    """The projection columns `append` updates with each commit (not frozen: two are made
    per step, and a frozen dataclass pays a setattr call per field)."""

    status: str
    steps: int
    tool_calls: int
    input_tokens: int
    output_tokens: int
    cost: float
    reason: str | None = None
    output: str | None = None
    finished_at: float | None = None


@dataclass(slots=True, frozen=True)
class GcReport:
    runs: int
    events: int
    blobs: int
    bytes_freed: int
    artifacts: int = 0  # artifacts no retained run referenced
    artifact_bytes: int = 0
    dry_run: bool = False  # nothing was deleted: what would be


@dataclass(slots=True, frozen=True)
class ApprovalRecord:
    """One approval in the inbox. The journal holds the request and, once the run
    resumes, the resolution; this row is the queue people act on."""

    id: str
    run_id: str
    call_id: str
    tenant: str
    agent: str
    tool: str
    arguments: str
    role: str
    rule: str
    reason: str
    status: str
    created_at: float
    expires_at: float | None = None
    on_expiry: str = "deny"
    escalate_to: str | None = None
    decided_by: str | None = None
    decided_at: float | None = None
    comment: str | None = None
    edited_arguments: str | None = None
    replaces: str | None = None  # the approval this one escalated from


@dataclass(slots=True, frozen=True)
class KillSwitch:
    scope: str  # "global", "tenant:X", "agent:X" or "tool:X"
    reason: str
    set_by: str
    set_at: float


@dataclass(slots=True, frozen=True)
class Breaker:
    """A tool's circuit breaker as the database holds it, shared by every worker: a row
    exists only while the tool is failing (`failures` in a row); `opened_at` is set while
    the breaker is open, `probe_until` while one worker's probe call is out."""

    key: str
    failures: int
    opened_at: float | None = None
    probe_until: float | None = None


@dataclass(slots=True, frozen=True)
class AppendResult:
    """What the engine learns from each commit, without another query."""

    cancel_requested: bool
    # The kill switches active when the events were committed: an action whose start
    # was committed after a switch was set sees it here, and does not execute.
    kill_switches: tuple[KillSwitch, ...] = ()
    pause_requested: bool = False
    # Every breaker with failures, as of the commit (almost always none).
    breakers: tuple[Breaker, ...] = ()
    # What the run has committed to its children (steps, tokens, cost): its limits count
    # them with its own spend, so a tree never spends past its root's budget.
    children: tuple[int, int, float] = (0, 0, 0.0)


@dataclass(slots=True, frozen=True)
class AuditRecord:
    seq: int
    entry: AuditEntry
    prev_hash: str
    hash: str


@dataclass(slots=True, frozen=True)
class AuditHead:
    """The chain's last record (`seq`, `hash`) and how many records it has, kept apart from
    the records and moved in the same transaction as every append: a chain that ends
    before its head was cut."""

    seq: int
    hash: str
    count: int
    ts: float  # when the head last moved


@dataclass(slots=True, frozen=True)
class ApiKey:
    """An API key of the control plane. Only the SHA-256 of its secret is stored; the full
    key (`bosun_<id>_<secret>`) is shown once, when it is created."""

    id: str
    tenant: str
    role: str  # viewer | operator | approver | admin
    name: str
    hash: str
    created_at: float
    revoked_at: float | None = None
    last_used_at: float | None = None
    # Approval roles (a policy's `approver_role`, e.g. `supervisor`) this key may decide,
    # besides the default `approver`.
    approves: tuple[str, ...] = ()


@dataclass(slots=True, frozen=True)
class ConsoleSession:
    """A web console login: the cookie holds a random token, the store only its SHA-256."""

    token_hash: str
    key_id: str
    csrf: str
    created_at: float
    expires_at: float


class ApprovalConflict(StoreError):
    """The approval is not pending any more (already resolved, expired or escalated)."""

    @classmethod
    def not_pending(cls, approval_id: str, existing: ApprovalRecord | None) -> ApprovalConflict:
        """The error for resolving `approval_id` when it is `existing` (None: no such one)."""
        if existing is None:
            return cls(f"no approval {approval_id!r}")
        return cls(
            f"approval {approval_id} is already {existing.status}"
            + (f" by {existing.decided_by}" if existing.decided_by else "")
            + "; it cannot be resolved twice"
        )


def blob_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


__all__ = [
    "APPROVED",
    "BLOB_THRESHOLD",
    "CANCELLED",
    "DENIED",
    "ESCALATED",
    "EXPIRED",
    "FAILED",
    "KILLED",
    "LIMIT_EXCEEDED",
    "NEEDS_ATTENTION",
    "PAUSED",
    "PENDING",
    "QUEUED",
    "RUNNING",
    "RUN_STATUSES",
    "SUCCEEDED",
    "TERMINAL_STATUSES",
    "WAITING",
    "WAITING_APPROVAL",
    "ApiKey",
    "AppendResult",
    "ApprovalConflict",
    "ApprovalRecord",
    "AuditHead",
    "AuditRecord",
    "Breaker",
    "ConsoleSession",
    "Feedback",
    "Finding",
    "GcReport",
    "KillSwitch",
    "MetricsSnapshot",
    "RunRecord",
    "RunSummary",
    "UsageRow",
    "blob_hash",
]


@dataclass(frozen=True, slots=True)
class Feedback:
    """A reward given to a run (`bosun feedback`, an approval's outcome, a veto)."""

    run_id: str
    ts: float
    score: float
    source: str  # person | approval | review | workflow
    tenant: str
    comment: str | None = None
