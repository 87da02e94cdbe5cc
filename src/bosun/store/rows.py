"""Conversions shared by both stores: events to rows (with large payloads split off), rows to records."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from bosun.journal.codec import decode_event, encode_event
from bosun.journal.events import Event
from bosun.store.base import BLOB_THRESHOLD, RunRecord, blob_hash

_BLOB_PREFIX = b'{"$blob":"'


@dataclass(slots=True, frozen=True)
class EventRow:
    seq: int
    ts: float
    kind: str
    data: bytes
    blob: str | None  # hash of the payload when it lives in `blobs`
    blob_data: bytes | None


def event_rows(events: Sequence[Event], first_seq: int) -> list[EventRow]:
    rows = []
    for offset, event in enumerate(events):
        data = encode_event(event)
        if len(data) > BLOB_THRESHOLD:
            digest = blob_hash(data)
            rows.append(
                EventRow(
                    first_seq + offset,
                    event.ts,
                    event.kind,
                    _BLOB_PREFIX + digest.encode() + b'"}',
                    digest,
                    data,
                )
            )
        else:
            rows.append(EventRow(first_seq + offset, event.ts, event.kind, data, None, None))
    return rows


def decode_row(
    kind: str, ts: float, data: bytes | memoryview | str, fetch_blob: Callable[[str], bytes]
) -> Event:
    raw = bytes(data) if not isinstance(data, str) else data.encode()
    if raw.startswith(_BLOB_PREFIX):
        raw = fetch_blob(orjson.loads(raw)["$blob"])
    return decode_event(kind, ts, raw)


RUN_COLUMNS = (
    "r.id, r.agent, r.agent_version, r.input, v.spec, r.status, r.tenant, r.user_id, r.session,"
    " r.tags, r.created_at, r.updated_at, r.finished_at, r.steps, r.tool_calls, r.input_tokens,"
    " r.output_tokens, r.cost, r.reason, r.output, r.last_seq, r.lease_owner, r.lease_expires_at,"
    " r.cancel_requested"
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
    )
