"""Triggers' shared state: each trigger's counters and pause flag, schedules' last tick,
and the deliveries seen (webhook and queue messages), written once for both dialects.

Why in the shared store: a trigger runs in every `bosun serve` and `bosun worker` given
the triggers file, so its counters, its pause and the tick a schedule last fired must be
the same for all of them. A delivery row records which run an event started: inserting it
after the run exists (`ON CONFLICT DO NOTHING`) tells the one process that counts `started`
from every other one that counts `deduplicated`, and a webhook's signature seen under
another delivery id is a replay.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import orjson

from bosun.spec.vocab import RunStatus

COUNTERS = ("received", "started", "deduplicated", "rejected", "dead_lettered")

TRIGGERS = """CREATE TABLE IF NOT EXISTS triggers (
    name TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    paused INTEGER NOT NULL DEFAULT 0,
    received {bigint} NOT NULL DEFAULT 0,
    started {bigint} NOT NULL DEFAULT 0,
    deduplicated {bigint} NOT NULL DEFAULT 0,
    rejected {bigint} NOT NULL DEFAULT 0,
    dead_lettered {bigint} NOT NULL DEFAULT 0,
    last_tick {real},
    updated_at {real} NOT NULL
)"""
DELIVERIES = """CREATE TABLE IF NOT EXISTS trigger_deliveries (
    trigger_name TEXT NOT NULL,
    delivery TEXT NOT NULL,
    run_id TEXT NOT NULL,
    signature TEXT,
    received_at {real} NOT NULL,
    PRIMARY KEY (trigger_name, delivery)
)"""
# The outbox of events from runs: a row per emit, inserted in the commit of its `ToolFinished`
# (so a process dying right after that commit loses nothing), marked once handed on.
EMITS = """CREATE TABLE IF NOT EXISTS trigger_emits (
    id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    event TEXT NOT NULL,
    emitted_at {real} NOT NULL,
    delivered_at {real}
)"""
EMITS_PENDING = (
    "CREATE INDEX IF NOT EXISTS trigger_emits_pending ON trigger_emits(emitted_at)"
    " WHERE delivered_at IS NULL"
)
DELIVERIES_SIGNATURE = (
    "CREATE UNIQUE INDEX IF NOT EXISTS trigger_deliveries_signature"
    " ON trigger_deliveries(trigger_name, signature)"
)

ENSURE = (
    "INSERT INTO triggers(name, tenant, updated_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING"
)


def count(counter: str) -> str:
    """The statement adding to one counter (its name checked: it is spliced in)."""
    if counter not in COUNTERS:
        raise ValueError(f"no trigger counter {counter!r} (one of {', '.join(COUNTERS)})")
    return f"UPDATE triggers SET {counter} = {counter} + ?, updated_at = ? WHERE name = ?"


SET_PAUSED = "UPDATE triggers SET paused = ?, updated_at = ? WHERE name = ?"
READ = (
    "SELECT name, tenant, paused, received, started, deduplicated, rejected, dead_lettered,"
    " last_tick FROM triggers"
)
READ_ONE = READ + " WHERE name = ?"
# A tick is taken once: only the process that moves `last_tick` forward past it fires it.
ADVANCE_TICK = (
    "UPDATE triggers SET last_tick = ?, updated_at = ? WHERE name = ?"
    " AND (last_tick IS NULL OR last_tick < ?)"
)
# A delivery is claimed before its run is created (`ON CONFLICT DO NOTHING` covers the id and
# the signature alike), then linked to the run: the one linker counts it `started`.
CLAIM_DELIVERY = (
    "INSERT INTO trigger_deliveries(trigger_name, delivery, run_id, signature, received_at)"
    " VALUES (?, ?, '', ?, ?) ON CONFLICT DO NOTHING"
)
DELIVERY = "SELECT run_id FROM trigger_deliveries WHERE trigger_name = ? AND delivery = ?"
LINK_DELIVERY = (
    "UPDATE trigger_deliveries SET run_id = ? WHERE trigger_name = ? AND delivery = ?"
    " AND run_id = ''"
)


# Runs a trigger started that have not ended (its backpressure), counted up to a limit.
_OPEN = ", ".join(f"'{s}'" for s in sorted(s for s in RunStatus if not s.terminal))
IN_FLIGHT_SQLITE = (
    "SELECT count(*) FROM (SELECT 1 FROM runs r WHERE r.status IN (" + _OPEN + ")"
    " AND r.tenant = ? AND EXISTS (SELECT 1 FROM json_each(r.tags)"
    " WHERE key = 'bosun.trigger' AND value = ?) LIMIT ?)"
)
IN_FLIGHT_POSTGRES = (
    "SELECT count(*) FROM (SELECT 1 FROM runs r WHERE r.status IN (" + _OPEN + ")"
    " AND r.tenant = %s AND r.tags @> %s::jsonb LIMIT %s) AS open_runs"
)


# An emit replayed after a crash has the same id (`<run>:<call>`): one row.
INSERT_EMIT = (
    "INSERT INTO trigger_emits(id, run_id, event, emitted_at) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (id) DO NOTHING"
)
PENDING_EMITS = (
    "SELECT id, run_id, event FROM trigger_emits WHERE delivered_at IS NULL"
    " AND emitted_at <= ? ORDER BY emitted_at, id LIMIT ?"
)
MARK_EMIT = "UPDATE trigger_emits SET delivered_at = ? WHERE id = ? AND delivered_at IS NULL"
# Retention (`bosun gc`): deliveries received, and emits handed on, before a time.
GC_DELIVERIES = "DELETE FROM trigger_deliveries WHERE received_at < ?"
GC_EMITS = "DELETE FROM trigger_emits WHERE delivered_at IS NOT NULL AND delivered_at < ?"
COUNT_GC_DELIVERIES = "SELECT count(*) FROM trigger_deliveries WHERE received_at < ?"
COUNT_GC_EMITS = (
    "SELECT count(*) FROM trigger_emits WHERE delivered_at IS NOT NULL AND delivered_at < ?"
)


def ddl_statements(render: Callable[[str], str]) -> list[str]:
    """The tables of migration 12 (a new database also gets `emit_statements`)."""
    return [render(TRIGGERS), render(DELIVERIES), DELIVERIES_SIGNATURE]


def emit_statements(render: Callable[[str], str]) -> list[str]:
    """The outbox (migration 16)."""
    return [render(EMITS), EMITS_PENDING]


def emit_values(run_id: str, cloud: dict, ts: float) -> tuple:
    """The values of `INSERT_EMIT` for a CloudEvent the journal committed."""
    return (cloud["id"], run_id, orjson.dumps(cloud).decode(), ts)


@dataclass(frozen=True, slots=True)
class PendingEmit:
    """An emit committed and not yet handed to the event triggers."""

    id: str
    run_id: str
    event: dict


@dataclass(frozen=True, slots=True)
class TriggerRow:
    """A trigger's shared state, as every process sees it."""

    name: str
    tenant: str
    paused: bool
    received: int = 0
    started: int = 0
    deduplicated: int = 0
    rejected: int = 0
    dead_lettered: int = 0
    last_tick: float | None = None

    @classmethod
    def of(cls, row: dict) -> TriggerRow:
        return cls(
            name=row["name"],
            tenant=row["tenant"],
            paused=bool(row["paused"]),
            received=int(row["received"]),
            started=int(row["started"]),
            deduplicated=int(row["deduplicated"]),
            rejected=int(row["rejected"]),
            dead_lettered=int(row["dead_lettered"]),
            last_tick=row["last_tick"],
        )

    def counters(self) -> dict[str, int]:
        return {c: getattr(self, c) for c in COUNTERS}


FIELDS = (
    "name",
    "tenant",
    "paused",
    "received",
    "started",
    "deduplicated",
    "rejected",
    "dead_lettered",
    "last_tick",
)


class TriggerStore(abc.ABC):
    """Triggers' shared state (see the module docstring); both backends implement these."""

    @abc.abstractmethod
    async def ensure_trigger(self, name: str, tenant: str) -> None:
        """Create the trigger's row if it has none (its counters at zero, not paused)."""

    @abc.abstractmethod
    async def count_trigger(self, name: str, counter: str, n: int = 1) -> None:
        """Add `n` to one of `COUNTERS`."""

    @abc.abstractmethod
    async def set_trigger_paused(self, name: str, paused: bool) -> bool:
        """Pause or resume; False when no such trigger has a row."""

    @abc.abstractmethod
    async def triggers(self, name: str | None = None) -> list[TriggerRow]:
        """Every trigger's row (or the one named), by name."""

    @abc.abstractmethod
    async def advance_tick(self, name: str, tick: float) -> bool:
        """Move the schedule's `last_tick` to `tick` if it is behind it: True for the one
        caller (of any process) that moved it."""

    @abc.abstractmethod
    async def trigger_in_flight(self, name: str, tenant: str, limit: int) -> int:
        """How many runs tagged `bosun.trigger=name` have not ended, counted up to `limit`."""

    @abc.abstractmethod
    async def claim_deliveries(
        self, name: str, deliveries: Sequence[tuple[str, str | None]], *, received: int = 0
    ) -> list[tuple[str, str | None]]:
        """Claim (delivery id, signature) pairs before their runs exist, in one transaction
        (a queue's batch costs one commit): for each, ("new", None) the first time; ("seen",
        run id, or None while its run is not linked yet) for a redelivery of the same id;
        ("replay", None) when its signature came before under another id. `received` is
        added to the trigger's counter in the same transaction."""

    @abc.abstractmethod
    async def link_deliveries(
        self, name: str, links: Sequence[tuple[str, str]], *, deduplicated: int = 0
    ) -> list[bool]:
        """Note the run each claimed (delivery id, run id) started, in one transaction: True
        for the one caller that linked it (counted `started`), False for the others (counted
        `deduplicated`, plus `deduplicated` more found linked already)."""

    @abc.abstractmethod
    async def pending_emits(self, before: float, limit: int = 100) -> list[PendingEmit]:
        """Emits committed at or before `before` and not marked delivered, oldest first."""

    @abc.abstractmethod
    async def mark_emits_delivered(self, ids: Sequence[str]) -> int:
        """Mark emits handed on (their runs durably created); how many were not marked yet."""

    @abc.abstractmethod
    async def gc_triggers(self, older_than: float, *, dry_run: bool = False) -> tuple[int, int]:
        """Delete the deliveries received before `older_than` and the emits delivered before
        it: (deliveries, emits). `dry_run` counts them and deletes nothing."""
