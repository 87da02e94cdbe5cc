"""Audit records and their hash chain.

Every governance fact (decisions, approvals, kills, rollbacks, policy versions)
becomes an audit record. Each record's hash covers its content and the previous
record's hash, so editing, inserting or deleting any row breaks the chain from
that row on; `bosun audit verify` recomputes it. The stores also keep the chain's
head (last seq, hash and count) in a row of its own, moved in the same transaction
as every append, so records cut from the end are missed too.

Records are redacted when they are written (`redacted`): the trail never needs a
secret, and the hash then covers what an export shows, so an export verifies.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from bosun.journal.codec import event_fields
from bosun.journal.events import Event
from bosun.journal.redact import Redactor, Sensitivity

GENESIS = "0" * 64

# Journal events that are also audit records. The store writes them in the same
# transaction as the events, so the two can never disagree.
AUDITED_KINDS = frozenset(
    {
        "policy_decided",
        "approval_requested",
        "approval_resolved",
        "tool_shadowed",
        "tool_compensated",
        "compensation_missing",
        "attention_resolved",
        "tool_definition_changed",
        "review_requested",  # a rule sent a call to a reviewer agent
        "review_decided",  # its verdict (the actor: `agent:<reviewer>`)
        "handed_off",  # who has the conversation from now on
    }
)
# The actions of records derived from journal events (a killed run's `run_finished` is
# `run_killed`): `bosun audit verify` checks each such event has its record.
JOURNAL_ACTIONS = AUDITED_KINDS | {"run_killed"}
# Record data that may hold a call's values: redacted before the record is chained.
REDACTED_KEYS = ("arguments", "edited_arguments", "result")


@dataclass(frozen=True, slots=True)
class AuditEntry:
    ts: float
    actor: str
    action: str
    subject: str
    data: dict[str, Any] = field(default_factory=dict)
    tenant: str = "default"


def canonical(entry: AuditEntry) -> bytes:
    return orjson.dumps(
        {
            "ts": entry.ts,
            "actor": entry.actor,
            "action": entry.action,
            "subject": entry.subject,
            "tenant": entry.tenant,
            "data": entry.data,
        },
        option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS,
    )


def chain_hash(prev_hash: str, entry: AuditEntry) -> str:
    return hashlib.sha256(prev_hash.encode() + canonical(entry)).hexdigest()


def audit_entry_for(run_id: str, tenant: str, event: Event, owner: str) -> AuditEntry | None:
    """The audit record for a journal event, or None if the event is not a governance fact."""
    if event.kind not in AUDITED_KINDS:
        if event.kind == "run_finished" and getattr(event, "status", "") == "killed":
            return AuditEntry(event.ts, owner, "run_killed", run_id, event_fields(event), tenant)
        return None
    data = event_fields(event)
    actor = (
        (f"agent:{data['reviewer']}" if event.kind == "review_decided" else None)
        or data.get("decided_by")
        or data.get("by")
        or ("policy" if event.kind == "policy_decided" else owner)
    )
    return AuditEntry(event.ts, actor, event.kind, run_id, data, tenant)


def needs_redaction(entry: AuditEntry) -> bool:
    """Whether the record holds a call's values (then its run's `Sensitivity` is needed)."""
    return not entry.data.keys().isdisjoint(REDACTED_KEYS)


def redacted(entry: AuditEntry, sensitivity: Sensitivity | None) -> AuditEntry:
    """The record as it is chained: sensitive fields of its arguments and result masked (by
    the rules every projection uses), and their values masked in its other text."""
    if not needs_redaction(entry):
        return entry
    data = Redactor(sensitivity).record(entry.data)
    return (
        entry
        if data is entry.data
        else AuditEntry(entry.ts, entry.actor, entry.action, entry.subject, data, entry.tenant)
    )


def version_registered(ts: float, agent: str, version: str, spec: dict[str, Any]) -> AuditEntry:
    """A new agent version (and so, possibly, a new policy) was first used: the audit trail
    keeps the exact definition, policy document included, every run of it was governed by."""
    return AuditEntry(
        ts,
        "runtime",
        "agent_version_registered",
        version,
        {
            "agent": agent,
            "policy": spec.get("policy"),
            "autonomy": spec.get("autonomy"),
            "tool_autonomy": spec.get("tool_autonomy"),
            # The digest of each tool's pinned definition (name, description, schema,
            # effect, idempotency, trust, source) and of the set: what `tool_definition_
            # changed` records are checked against.
            "tools": [
                {k: t.get(k) for k in ("name", "effect", "idempotent", "trusted", "undo", "digest")}
                for t in spec.get("tools", [])
            ],
            "tools_digest": spec.get("tools_digest"),
        },
    )
