"""Conversions shared by both stores: events to rows (with large payloads split off), rows to records."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any, NamedTuple, TypeVar

import orjson

from bosun.journal.audit import AuditEntry, chain_hash
from bosun.journal.codec import encode_event, event_fields, event_from_fields
from bosun.journal.events import ApprovalRequested, Event
from bosun.store import sql
from bosun.store.records import (
    BLOB_THRESHOLD,
    PENDING,
    ApiKey,
    AppendResult,
    ApprovalRecord,
    AuditHead,
    AuditRecord,
    Breaker,
    ConsoleSession,
    Finding,
    KillSwitch,
    RunRecord,
    RunSummary,
    blob_hash,
)
from bosun.store.sql import KEY_COLUMNS

_BLOB_KEY = "$blob"
T = TypeVar("T")


class EventRow(NamedTuple):
    """One encoded event, ready for the `events` table (a tuple: several are made per step)."""

    seq: int
    ts: float
    kind: str
    data: bytes
    blob: str | None  # hash of the payload that was moved to `blobs`
    blob_data: bytes | None


@dataclass(slots=True)
class PendingAppend:
    """One `append` call as both group-commit writers queue it: its events (and their rows),
    the lease it claims to hold, the summary to write, and the future its caller awaits."""

    run_id: str
    events: Sequence[Event]
    rows: list[EventRow]
    owner: str
    summary: RunSummary
    future: asyncio.Future[AppendResult]


def event_rows(events: Sequence[Event], first_seq: int) -> list[EventRow]:
    """Encode events; a payload field larger than BLOB_THRESHOLD is stored once, by content hash.

    Only the field's value is hashed (not the event), so the same document read by
    a thousand runs is stored once.
    """
    rows = []
    for offset, event in enumerate(events):
        data = encode_event(event)
        blob = blob_data = None
        if len(data) > BLOB_THRESHOLD:
            fields = event_fields(event)
            encoded = {k: orjson.dumps(v) for k, v in fields.items()}
            largest = max(encoded, key=lambda k: len(encoded[k]))
            if len(encoded[largest]) > BLOB_THRESHOLD // 2:
                blob_data = encoded[largest]
                blob = blob_hash(blob_data)
                fields[largest] = {_BLOB_KEY: blob}
                data = orjson.dumps(fields, option=orjson.OPT_NON_STR_KEYS)
        rows.append(EventRow(first_seq + offset, event.ts, event.kind, data, blob, blob_data))
    return rows


def new_run_rows(run: RunRecord, events: Sequence[Event], now: float) -> list[EventRow]:
    """A new run's first events as rows (seq 1..n), with the run's times, root (a run
    without one is its own) and `last_seq` set to match: what both stores insert."""
    run.created_at = run.created_at or now
    run.updated_at = now
    run.root_id = run.root_id or run.id
    rows = event_rows(events, 1)
    run.last_seq = len(rows)
    return rows


def summary_values(s: RunSummary, now: float, last_seq: int | None) -> tuple[object, ...]:
    """The values of `sql.SUMMARY_SET`: the summary, the time, the journal's new last seq
    (None when the append adds no event)."""
    return (
        s.steps, s.tool_calls, s.input_tokens, s.output_tokens, s.cost, s.reason, s.output,
        s.finished_at, now, last_seq,
    )  # fmt: skip


def decode_row(
    kind: str, ts: float, data: bytes | memoryview | str, fetch_blob: Callable[[str], bytes]
) -> Event:
    raw = bytes(data) if not isinstance(data, str) else data.encode()
    fields = orjson.loads(raw)
    if b'"$blob"' in raw:
        for key, value in fields.items():
            if isinstance(value, dict) and len(value) == 1 and _BLOB_KEY in value:
                fields[key] = orjson.loads(fetch_blob(value[_BLOB_KEY]))
    return event_from_fields(kind, ts, fields)


def key_values(key: ApiKey) -> tuple[Any, ...]:
    """An API key as the values of `sql.KEY_COLUMNS` (approval roles comma-joined)."""
    return (
        key.id,
        key.tenant,
        key.role,
        key.name,
        key.hash,
        key.created_at,
        key.revoked_at,
        key.last_used_at,
        ",".join(key.approves),
    )


def key_from_row(row: Sequence[Any]) -> ApiKey:
    """A row of `sql.KEY_COLUMNS`, by name."""
    fields = dict(zip(_KEY_FIELDS, row, strict=True))
    approves = fields.pop("approves")
    return ApiKey(**fields, approves=tuple(r for r in approves.split(",") if r))


_KEY_FIELDS = tuple(c.strip() for c in KEY_COLUMNS.split(","))


def session_values(session: ConsoleSession) -> tuple[Any, ...]:
    """A console session as the values of `sql.SESSION_COLUMNS`."""
    return (
        session.token_hash,
        session.key_id,
        session.csrf,
        session.created_at,
        session.expires_at,
    )


# A run's columns and the `RunRecord` field each fills, in one table: rows are mapped by
# these names, never by position, so a column added here is added everywhere at once.
# (`v.spec` is the pinned agent definition, joined from `agent_versions v`.)
RUN_FIELDS: tuple[tuple[str, str], ...] = (
    ("id", "r.id"),
    ("agent", "r.agent"),
    ("agent_version", "r.agent_version"),
    ("input", "r.input"),
    ("spec", "v.spec"),
    ("status", "r.status"),
    ("tenant", "r.tenant"),
    ("user", "r.user_id"),
    ("session", "r.session"),
    ("tags", "r.tags"),
    ("created_at", "r.created_at"),
    ("updated_at", "r.updated_at"),
    ("finished_at", "r.finished_at"),
    ("steps", "r.steps"),
    ("tool_calls", "r.tool_calls"),
    ("input_tokens", "r.input_tokens"),
    ("output_tokens", "r.output_tokens"),
    ("cost", "r.cost"),
    ("reason", "r.reason"),
    ("output", "r.output"),
    ("last_seq", "r.last_seq"),
    ("lease_owner", "r.lease_owner"),
    ("lease_expires_at", "r.lease_expires_at"),
    ("cancel_requested", "r.cancel_requested"),
    ("pause_requested", "r.pause_requested"),
    ("claims", "r.claims"),
    ("parent_id", "r.parent_id"),
    ("root_id", "r.root_id"),
    ("idempotency_key", "r.idempotency_key"),
    ("limit_steps", "r.limit_steps"),
    ("limit_tokens", "r.limit_tokens"),
    ("limit_cost", "r.limit_cost"),
    ("deadline", "r.deadline"),
    ("reserved_steps", "r.reserved_steps"),
    ("reserved_tokens", "r.reserved_tokens"),
    ("reserved_cost", "r.reserved_cost"),
    ("child_steps", "r.child_steps"),
    ("child_tokens", "r.child_tokens"),
    ("child_cost", "r.child_cost"),
)
RUN_COLUMNS = ", ".join(column for _, column in RUN_FIELDS)
_RUN_NAMES = tuple(name for name, _ in RUN_FIELDS)
_JSON = (str, bytes)


def run_from_row(row: Sequence[Any]) -> RunRecord:
    """A row selected as `RUN_COLUMNS`, as a `RunRecord`: each value by its field's name."""
    fields = dict(zip(_RUN_NAMES, row, strict=True))
    spec, tags = fields["spec"], fields["tags"]
    fields["spec"] = orjson.loads(spec) if isinstance(spec, _JSON) else spec
    fields["tags"] = orjson.loads(tags) if isinstance(tags, _JSON) else (tags or {})
    fields["cancel_requested"] = bool(fields["cancel_requested"])
    fields["pause_requested"] = bool(fields["pause_requested"])
    return RunRecord(**fields)


def scope_tenant(scope: str) -> str:
    """The tenant a kill-switch scope belongs to, for the audit record."""
    return scope.partition(":")[2] if scope.startswith("tenant:") else "default"


def approval_audit(record: ApprovalRecord, action: str, by: str, now: float) -> AuditEntry:
    """The audit record of something that happened to an approval."""
    return AuditEntry(
        now,
        by,
        action,
        record.run_id,
        {
            "approval_id": record.id,
            "call_id": record.call_id,
            "tool": record.tool,
            "status": record.status,
            "role": record.role,
            "comment": record.comment,
            "edited_arguments": record.edited_arguments,
        },
        record.tenant,
    )


def approval_values(event: ApprovalRequested, run_id: str, tenant: str, agent: str) -> tuple:
    """The values of `sql.INSERT_APPROVAL` for an approval the journal requested."""
    return (
        event.approval_id,
        run_id,
        event.call_id,
        tenant,
        agent,
        event.tool,
        event.arguments,
        event.role,
        event.rule,
        event.reason,
        PENDING,
        event.ts,
        event.expires_at,
        event.on_expiry,
        event.escalate_to,
    )


def chain_rows(
    entries: Sequence[AuditEntry], seq: int, prev: str
) -> tuple[list[tuple[Any, ...]], int, str]:
    """`entries` chained after the record (`seq`, `prev` hash) as rows of `sql.INSERT_AUDIT`,
    with the new head's seq and hash. The chain's rule, written once for both stores."""
    rows = []
    for entry in entries:
        seq += 1
        digest = chain_hash(prev, entry)
        rows.append(
            (
                seq,
                entry.ts,
                entry.tenant,
                entry.actor,
                entry.action,
                entry.subject,
                orjson.dumps(entry.data, option=orjson.OPT_NON_STR_KEYS).decode(),
                prev,
                digest,
            )
        )
        prev = digest
    return rows, seq, prev


def audit_record_from_row(row: Sequence[Any]) -> AuditRecord:
    """A row of `sql.AUDIT_RECORDS`."""
    seq, ts, actor, action, subject, data, tenant, prev, digest = row
    return AuditRecord(
        seq, AuditEntry(ts, actor, action, subject, orjson.loads(data), tenant), prev, digest
    )


def by_name(cls: type[T], columns: str) -> Callable[[Sequence[Any]], T]:
    """A function making a `cls` from a row selected as `columns`, each value given to the
    field of its column's name (checked once, here: a renamed field fails at import)."""
    names = tuple(c.strip() for c in columns.split(","))
    unknown = set(names) - {f.name for f in fields(cls)}  # type: ignore[arg-type]
    if unknown:
        raise ValueError(f"{cls.__name__} has no field for columns {sorted(unknown)}")

    def make(row: Sequence[Any]) -> T:
        return cls(**dict(zip(names, row, strict=True)))

    make.__name__ = f"{cls.__name__.lower()}_from_row"
    return make


approval_from_row = by_name(ApprovalRecord, sql.APPROVAL_COLUMNS)
kill_switch_from_row = by_name(KillSwitch, sql.KILL_SWITCH_COLUMNS)
breaker_from_row = by_name(Breaker, sql.BREAKER_COLUMNS)
session_from_row = by_name(ConsoleSession, sql.SESSION_COLUMNS)
finding_from_row = by_name(Finding, sql.FINDINGS_COLUMNS)
audit_head_from_row = by_name(AuditHead, sql.AUDIT_HEAD_COLUMNS)
