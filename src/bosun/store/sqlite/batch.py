"""What one SQLite group commit carries, and the rules that decide what it writes.

Shared by the writer (`journal`), the run rows (`runs`) and the audit catch-up (`audit`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from bosun.journal.audit import (
    AUDITED_KINDS,
    AuditEntry,
)
from bosun.journal.events import Event
from bosun.store import rows, sql
from bosun.store.base import (
    RUNNING,
    AppendResult,
    RunRecord,
    RunSummary,
)
from bosun.store.rows import (
    RUN_COLUMNS,
    EventRow,
    PendingAppend,
)

log = logging.getLogger("bosun.store")

# How often commits read the breakers table again (other processes' changes show within it).
BREAKER_READ_EVERY = 0.5
# How long audit records and row totals may wait to be written, and how many records may wait.
CATCH_UP_DELAY = 1.0
AUDIT_BATCH = 256


@dataclass(slots=True)
class PendingCreate:
    run: RunRecord
    rows: list[EventRow]
    future: asyncio.Future[AppendResult]
    no: int = 0  # the run's number, given when it is written
    existing: str | None = None  # its key was taken: the id of the run that has it
    refused: BaseException | None = None  # its parent had no budget left for it


class Owner(NamedTuple):
    """A run appended to in this batch, as its row says inside the write transaction (a
    tuple: the row is taken as it comes)."""

    id: str
    no: int
    lease_owner: str | None
    cancel_requested: int
    pause_requested: int
    status: str
    tenant: str
    agent: str
    audited_seq: int
    child_steps: int  # what the run committed to its children (`budgets_sql`)
    child_tokens: int
    child_cost: float
    any_switch: int  # whether any kill switch is set, whoever it covers
    held: int  # whether the run holds a share of its parent's budget (to settle at its end)


OWNER_COLUMNS = (
    "SELECT id, no, lease_owner, cancel_requested, pause_requested, status, tenant, agent,"
    " audited_seq, child_steps, child_tokens, child_cost, EXISTS (SELECT 1 FROM kill_switches),"
    " reserved_steps IS NOT NULL FROM runs WHERE id"
)
OWNER_OF_ONE = OWNER_COLUMNS + "=?"
# The events of a commit that govern something: approvals to insert, audit records to derive.
GOVERNANCE_KINDS = AUDITED_KINDS | {"run_finished"}


@dataclass(slots=True, frozen=True)
class Unaudited:
    """A committed journal event whose audit record is not in the chain yet."""

    run_id: str
    seq: int
    entry: AuditEntry


Pending = PendingAppend | PendingCreate
CARRY_ON = AppendResult(False, (), False)  # what nearly every commit tells its run

# A commit whose summary is the row's already (a tool result: only the journal grows) leaves
# the row alone: one page fewer to write. Readers take `last_seq` and `updated_at` from the
# journal (see EXACT_RUN_COLUMNS).
UPDATE_SUMMARY = f"UPDATE runs SET {sql.SUMMARY_SET} WHERE no=?"


def journal_adds_up(before: RunSummary, after: RunSummary, events: Sequence[Event]) -> bool:
    """Whether `after` is `before` plus what these events add, counted as readers count the
    journal past a row's `last_seq` (`COLUMN_EXPRESSIONS`): then the row may wait."""
    if (before.status, before.reason, before.output, before.finished_at) != (
        after.status,
        after.reason,
        after.output,
        after.finished_at,
    ):
        return False
    steps, calls, tokens_in, tokens_out, cost = (
        before.steps, before.tool_calls, before.input_tokens, before.output_tokens, before.cost,
    )  # fmt: skip
    for event in events:
        if event.kind == "model_responded":
            steps += 1
            tokens_in += event.input_tokens  # type: ignore[attr-defined]
            tokens_out += event.output_tokens  # type: ignore[attr-defined]
            cost += event.cost  # type: ignore[attr-defined]
        elif event.kind == "tool_started" and event.attempt == 1:  # type: ignore[attr-defined]
            calls += 1
    return (steps, calls, tokens_in, tokens_out, cost) == (
        after.steps, after.tool_calls, after.input_tokens, after.output_tokens, after.cost,
    )  # fmt: skip


def totals(s: RunSummary) -> tuple[int, int, int, int, float]:
    return (s.steps, s.tool_calls, s.input_tokens, s.output_tokens, s.cost)


def fresh_summary() -> RunSummary:
    return RunSummary(RUNNING, 0, 0, 0, 0, 0.0)


def summary_values(item: PendingAppend, now: float) -> tuple[object, ...]:
    return rows.summary_values(item.summary, now, item.rows[-1].seq if item.rows else None)


def others_ready() -> bool:
    """Whether other callbacks wait to run in this loop tick (always assumed so on loops
    that do not expose their ready queue, as asyncio's own loops do)."""
    ready = getattr(asyncio.get_running_loop(), "_ready", None)
    return ready is None or len(ready) > 0


# Only when the status changes: a column of `runs_by_status` in the SET list rewrites an
# index page even when the value is the same.
UPDATE_SUMMARY_AND_STATUS = f"UPDATE runs SET {sql.SUMMARY_SET}, status=? WHERE no=?"


# A row lags behind commits that left it alone: the journal's last event (one index probe)
# has the current `last_seq` and `updated_at`, and the events past the row's `last_seq` (a
# short range of the run's index) add what the row's totals do not count yet.
LAST_EVENT = "FROM events WHERE run = r.no ORDER BY seq DESC LIMIT 1"
TAIL = "FROM events WHERE run = r.no AND seq > r.last_seq AND kind = "
FIELD = "json_extract(CAST(data AS TEXT), '$.{}')"
ANSWERS = f"{TAIL}'model_responded'"
COLUMN_EXPRESSIONS = {
    "r.updated_at": f"max(r.updated_at, coalesce((SELECT ts {LAST_EVENT}), 0))",
    "r.last_seq": f"coalesce((SELECT seq {LAST_EVENT}), r.last_seq)",
    "r.steps": f"r.steps + (SELECT count(*) {ANSWERS})",
    "r.tool_calls": (  # a call's first start counts; a rerun after a crash is attempt 2
        f"r.tool_calls + (SELECT count(*) {TAIL}'tool_started' AND {FIELD.format('attempt')} = 1)"
    ),
    "r.input_tokens": (
        f"r.input_tokens + (SELECT coalesce(sum({FIELD.format('input_tokens')}), 0) {ANSWERS})"
    ),
    "r.output_tokens": (
        f"r.output_tokens + (SELECT coalesce(sum({FIELD.format('output_tokens')}), 0) {ANSWERS})"
    ),
    "r.cost": f"r.cost + (SELECT coalesce(sum({FIELD.format('cost')}), 0.0) {ANSWERS})",
}
EXACT_RUN_COLUMNS = ", ".join(
    COLUMN_EXPRESSIONS.get(column.strip(), column.strip()) for column in RUN_COLUMNS.split(",")
)
assert all(c in RUN_COLUMNS.split(", ") for c in COLUMN_EXPRESSIONS), "update EXACT_RUN_COLUMNS"
# Written at a catch-up: never over a newer summary (a worker that lost its lease may be late).
UPDATE_BEHIND = (
    "UPDATE runs SET steps=?, tool_calls=?, input_tokens=?, output_tokens=?, cost=?,"
    " updated_at=?, last_seq=? WHERE no=? AND last_seq<?"
)


# A claim counts once more when the journal did not grow since the previous claim (the
# assignments of one UPDATE all read the row as it was, so both see the old claimed_seq).
JOURNAL_SEQ = "coalesce((SELECT max(seq) FROM events WHERE run = runs.no), 0)"
COUNT_CLAIM = (
    f"claims = CASE WHEN claimed_seq = {JOURNAL_SEQ} THEN claims + 1 ELSE 1 END,"
    f" claimed_seq = {JOURNAL_SEQ}"
)
