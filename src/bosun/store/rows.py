"""Conversions shared by both stores: events to rows (with large payloads split off), rows to records."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import orjson

from bosun.journal.audit import AuditEntry
from bosun.journal.codec import encode_event, event_fields, event_from_fields
from bosun.journal.events import Event
from bosun.store.base import BLOB_THRESHOLD, ApiKey, ApprovalRecord, RunRecord, blob_hash

_BLOB_KEY = "$blob"


class EventRow(NamedTuple):
    """One encoded event, ready for the `events` table (a tuple: several are made per step)."""

    seq: int
    ts: float
    kind: str
    data: bytes
    blob: str | None  # hash of the payload that was moved to `blobs`
    blob_data: bytes | None


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


KEY_COLUMNS = "id, tenant, role, name, hash, created_at, revoked_at, last_used_at, approves"


def key_values(key: ApiKey) -> tuple[Any, ...]:
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
    *values, approves = row
    return ApiKey(*values, approves=tuple(r for r in approves.split(",") if r))


RUN_COLUMNS = (
    "r.id, r.agent, r.agent_version, r.input, v.spec, r.status, r.tenant, r.user_id, r.session,"
    " r.tags, r.created_at, r.updated_at, r.finished_at, r.steps, r.tool_calls, r.input_tokens,"
    " r.output_tokens, r.cost, r.reason, r.output, r.last_seq, r.lease_owner, r.lease_expires_at,"
    " r.cancel_requested, r.pause_requested, r.claims, r.parent_id, r.root_id, r.idempotency_key,"
    " r.limit_steps, r.limit_tokens, r.limit_cost, r.deadline, r.reserved_steps,"
    " r.reserved_tokens, r.reserved_cost, r.child_steps, r.child_tokens, r.child_cost"
)


def run_from_row(row: Sequence[Any] | Mapping[str, Any]) -> RunRecord:
    values = list(row.values()) if isinstance(row, Mapping) else list(row)
    spec = values[4]
    tags = values[9]
    return RunRecord(
        id=values[0],
        agent=values[1],
        agent_version=values[2],
        input=values[3],
        spec=orjson.loads(spec) if isinstance(spec, str | bytes) else spec,
        status=values[5],
        tenant=values[6],
        user=values[7],
        session=values[8],
        tags=orjson.loads(tags) if isinstance(tags, str | bytes) else (tags or {}),
        created_at=values[10],
        updated_at=values[11],
        finished_at=values[12],
        steps=values[13],
        tool_calls=values[14],
        input_tokens=values[15],
        output_tokens=values[16],
        cost=values[17],
        reason=values[18],
        output=values[19],
        last_seq=values[20],
        lease_owner=values[21],
        lease_expires_at=values[22],
        cancel_requested=bool(values[23]),
        pause_requested=bool(values[24]),
        claims=values[25],
        parent_id=values[26],
        root_id=values[27],
        idempotency_key=values[28],
        limit_steps=values[29],
        limit_tokens=values[30],
        limit_cost=values[31],
        deadline=values[32],
        reserved_steps=values[33],
        reserved_tokens=values[34],
        reserved_cost=values[35],
        child_steps=values[36],
        child_tokens=values[37],
        child_cost=values[38],
    )


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
