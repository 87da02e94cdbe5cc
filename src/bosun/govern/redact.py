"""Redact fields a tool declares sensitive, in everything people and exporters see.

The tool itself always receives the real values; the journal keeps them so a
resumed run can execute. Projections (timelines, `bosun show --json`, traces,
approvals listings) pass through `redact_event`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import orjson

from bosun.journal.events import Event

MASK = "[redacted]"


def redact_value(value: Any, fields: frozenset[str]) -> Any:
    if isinstance(value, dict):
        return {k: MASK if k in fields else redact_value(v, fields) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_value(v, fields) for v in value]
    return value


def redact_json_text(text: str, fields: frozenset[str]) -> str:
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
    return orjson.dumps(redact_value(parsed, fields)).decode()


def sensitive_fields(spec: dict[str, Any]) -> dict[str, frozenset[str]]:
    """tool name -> sensitive field names, from a run's pinned agent definition."""
    return {
        t["name"]: frozenset(t.get("sensitive") or ())
        for t in spec.get("tools", [])
        if t.get("sensitive")
    }


def redact_event(event: Event, sensitive: dict[str, frozenset[str]]) -> Event:
    tool = getattr(event, "tool", None)
    fields = sensitive.get(tool) if tool else None
    if not fields:
        return event
    changes: dict[str, Any] = {}
    for name in ("arguments", "result"):
        value = getattr(event, name, None)
        if isinstance(value, str) and name == "arguments":
            changes[name] = redact_json_text(value, fields)
        elif value is not None and name == "result":
            changes[name] = redact_value(value, fields)
    return dataclasses.replace(event, **changes) if changes else event


def redact_events(
    events: Iterable[tuple[int, Event]], spec: dict[str, Any]
) -> list[tuple[int, Event]]:
    sensitive = sensitive_fields(spec)
    if not sensitive:
        return list(events)
    return [(seq, redact_event(e, sensitive)) for seq, e in events]
