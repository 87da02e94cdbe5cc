"""JSON encoding of events: one compact JSON object per event, the kind stored beside it."""

from __future__ import annotations

import dataclasses
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


def _trailing_defaults(cls: type) -> tuple[bytes, ...]:
    """The JSON of the class's last fields at their empty defaults (None, [], {}), last
    field first, as orjson writes them: `,"full":null`. Fields added to an event later
    are optional and go last, so a journal row does not grow for what most events lack."""
    tails: list[bytes] = []
    for f in reversed(dataclasses.fields(cls)):
        if f.default is None:
            empty: Any = None
        elif f.default_factory in (list, dict):  # type: ignore[comparison-overlap]
            empty = f.default_factory()  # type: ignore[misc]
        else:
            break
        tails.append(b"," + orjson.dumps(f.name) + b":" + orjson.dumps(empty))
    return tuple(tails)


_TAILS = {cls: tails for cls in EVENT_TYPES.values() if (tails := _trailing_defaults(cls))}


def encode_event(event: Event) -> bytes:
    """orjson serialises the dataclass natively (in C), `ts` first (every event's first
    field); `ts` has its own column, so it is cut from the JSON (28 bytes an event), and
    so are trailing fields left at their empty defaults (decoding gives them back)."""
    try:
        raw = orjson.dumps(event, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError as exc:
        raise UnstorableEvent(f"a {event.kind} event cannot be stored: {exc}") from None
    tails = _TAILS.get(type(event))
    if tails:  # orjson writes every field in order: the last one ends the object
        end = len(raw) - 1
        for tail in tails:
            if not raw.endswith(tail, 0, end):
                break
            end -= len(tail)
        raw = raw[:end] + b"}"
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
