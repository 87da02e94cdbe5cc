"""Bosun's vocabulary, defined once: every status, level and kind the layers share.

Each is a `StrEnum`, so a member *is* its string: it compares equal to the text
stored in the database and sent over the API, encodes to JSON as that text, and
the edges (API schemas, CLI choices, YAML validation) list the members instead of
keeping their own copies that drift (the API once refused `status=paused` because
its list lacked it).
"""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    LIMIT_EXCEEDED = "limit_exceeded"
    NEEDS_ATTENTION = "needs_attention"
    # Parked on approvals only: a person is what it needs (A2A: input-required).
    WAITING_APPROVAL = "waiting_approval"
    # Parked on other durable waits (a signal, a timer, a child run, a remote task).
    WAITING = "waiting"
    # Stopped at a step boundary on request; `unpause` queues it again.
    PAUSED = "paused"
    KILLED = "killed"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATUSES

    @property
    def parked(self) -> bool:
        """Holds no worker and waits for something outside itself."""
        return self in PARKED_STATUSES


TERMINAL_STATUSES = frozenset(
    {
        RunStatus.SUCCEEDED,
        RunStatus.FAILED,
        RunStatus.CANCELLED,
        RunStatus.LIMIT_EXCEEDED,
        RunStatus.KILLED,
    }
)
PARKED_STATUSES = frozenset({RunStatus.WAITING_APPROVAL, RunStatus.WAITING})


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"
    ESCALATED = "escalated"
    CANCELLED = "cancelled"  # its run ended first (cancelled, killed, failed): nothing to decide


class Verdict(StrEnum):
    ALLOW = "allow"
    DENY = "deny"
    REQUIRE_APPROVAL = "require_approval"
    SHADOW = "shadow"
    NOTIFY = "notify"
    # A reviewer agent decides first (a child run; docs/teams.md, "Reviewers that veto").
    REVIEW = "review"


class ReviewVerdict(StrEnum):
    """What a reviewer agent said of a proposed call."""

    APPROVE = "approve"
    VETO = "veto"  # not executed; the proposer's model sees the reason, as with a denial
    EDIT = "edit"  # not executed; the proposer sees the edit asked for and may propose again


class History(StrEnum):
    """How much of the conversation a handoff passes to the agent receiving it."""

    ALL = "all"  # every user message and every assistant text, in order
    LAST_USER = "last_user"  # the latest user message only
    NONE = "none"  # only the note the handing agent wrote in the transfer


class Autonomy(StrEnum):
    OBSERVE = "observe"
    SUGGEST = "suggest"
    AUTO_NOTIFY = "auto_notify"
    AUTO = "auto"


class Effect(StrEnum):
    READ = "read"
    WRITE = "write"
    IRREVERSIBLE = "irreversible"


class OnChildFailure(StrEnum):
    """What a parent does with its other children when one of them fails (docs/teams.md)."""

    CONTINUE = "continue"  # the default: finished and running siblings are left alone
    CANCEL_SIBLINGS = "cancel_siblings"  # the children still running are cancelled


class WaitKind(StrEnum):
    """What a durable wait is parked on."""

    APPROVAL = "approval"
    CHILD = "child"
    REMOTE = "remote"
    SIGNAL = "signal"
    TIMER = "timer"


class PushStatus(StrEnum):
    """An A2A push delivery (the outbox row of `store/push.py`)."""

    PENDING = "pending"  # owed: sent when due (again after a failed attempt)
    DELIVERED = "delivered"  # the webhook answered 2xx
    FAILED = "failed"  # every attempt failed, or the URL is refused (SSRF): not retried


class WaitStatus(StrEnum):
    PENDING = "pending"
    # Delivered: the result is stored on the wait and enters the journal once, when
    # the run next holds a lease.
    SETTLED = "settled"
    # Its deadline passed; the declared outcome is its result.
    EXPIRED = "expired"
    # The run ended (cancelled, killed) before the wait settled.
    CANCELLED = "cancelled"


class CallOutcome(StrEnum):
    """Where one tool call stands, as every edge shows it (`bosun.journal.calls`)."""

    DONE = "done"
    FAILED = "failed"
    # Stopped before it ran: denied (by policy or a person), expired, killed, cancelled,
    # or refused by an open circuit breaker.
    BLOCKED = "blocked"
    SHADOWED = "shadowed"  # recorded, not executed
    WAITING = "waiting"  # for an approval or a durable wait (signal, child, timer, ...)
    PENDING = "pending"  # decided, not (yet) executed


class Profile(StrEnum):
    """The injection-defence rules a policy includes (`bosun.govern.defaults`)."""

    DEFAULT = "default"  # policy v2: hold calls whose sinks the user did not supply
    STRICT = "strict"  # v2 plus: irreversible after untrusted content needs approval
    LEGACY = "legacy"  # the two rules shipped before v2, unchanged


class Origin(StrEnum):
    """Where an argument's value came from (`bosun.govern.provenance`), most trusted first."""

    USER = "user"  # the run's input (the user's request)
    INSTRUCTIONS = "instructions"  # the agent's instructions
    TRUSTED = "trusted"  # output of a tool declared trusted
    NONE = "none"  # nowhere the run read: the model made it up (or computed it)
    UNTRUSTED = "untrusted"  # output of a tool declared trusted=False
