"""JSON encoding of events: one compact JSON object per event, the kind stored beside it."""

from __future__ import annotations

from typing import Any

import orjson

from bosun.errors import StoreError, UnstorableEvent
from bosun.journal.events import EVENT_TYPES, Event


def event_fields(event: Event) -> dict[str, Any]:
    """The event's data without `ts` (stored in its own column): a copy of its `__dict__`,
    which holds exactly its fields (events are dataclasses without slots)."""
    fields = event.__dict__.copy()
    del fields["ts"]
    return fields


def encode_event(event: Event) -> bytes:
    """orjson serialises the dataclass natively (in C), `ts` first (every event's first
    field); `ts` has its own column, so it is cut from the JSON (28 bytes an event)."""
    try:
        raw = orjson.dumps(event, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError as exc:
        raise UnstorableEvent(f"a {event.kind} event cannot be stored: {exc}") from None
    comma = raw.find(b",")  # a float has none, so this ends the `"ts":...` member
    return b"{" + raw[comma + 1 :] if comma > 0 else b"{}"


def decode_event(kind: str, ts: float, data: bytes | str) -> Event:
    return event_from_fields(kind, ts, orjson.loads(data))


def event_from_fields(kind: str, ts: float, fields: dict[str, Any]) -> Event:
    fields.pop("ts", None)
    cls = EVENT_TYPES.get(kind)
    if cls is None:
        raise StoreError(
            f"journal holds an event of unknown kind {kind!r}; "
            "it was written by a newer Bosun: upgrade this one to read it"
        )
    return cls(ts=ts, **fields)


def event_to_dict(event: Event, seq: int | None = None) -> dict[str, Any]:
    """The public JSON shape of an event (used by `bosun show --json`)."""
    out: dict[str, Any] = {"kind": event.kind, "ts": event.ts}
    if seq is not None:
        out["seq"] = seq
    out.update(event_fields(event))
    return out
