"""Run-tree budgets in SQL: reserve when a child is created, settle when it finishes.

A child run holds part of its parent's budget (`reserved_*` on the child's row) and the
parent counts it in `child_*`, with its own spend, against its limits (`limit_*`). Both
moves are single conditional statements inside the transaction that creates or finishes
the child, so two children created at once cannot both take what is left: the second
`UPDATE ... WHERE own + child + reserve <= limit` finds the first one's reservation and
matches nothing (`BudgetExhausted`).

Settling, in the child's terminal append: the parent's `child_*` loses the reservation and
gains what the child actually spent (its own spend plus what it committed to its own
children), so the unused part is released and any overshoot (a step's tokens past a limit
checked before the step) is charged. The child's `reserved_*` become NULL: settled once,
whoever appends the terminal event (a worker that took over a killed one settles too).

Written once for both dialects; only the placeholder and the child's own spend differ
(PostgreSQL's row is current at every commit; SQLite's row totals lag and readers add the
journal's tail, as in `sqlite._COLUMN_EXPRESSIONS`). The backends call these hooks:
`sqlite_reserve`, `sqlite_settle`, `postgres_reserve`, `postgres_settle`; they insert
`BUDGET_COLUMNS` (`budget_values(run)`) with the run's row, and add `SQLITE_COLUMNS` /
`POSTGRES_SCHEMA`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from bosun.errors import BudgetExhausted
from bosun.spec.vocab import TERMINAL_STATUSES

if TYPE_CHECKING:
    import psycopg

    from bosun.store.base import RunRecord, RunSummary

# (column, SQLite type, PostgreSQL type): limits and deadline as the tree counts them,
# what the run holds of its parent's (NULL: nothing, or settled), what it committed below.
_COLUMNS = (
    ("limit_steps", "INTEGER", "INTEGER"),
    ("limit_tokens", "INTEGER", "BIGINT"),
    ("limit_cost", "REAL", "DOUBLE PRECISION"),
    ("deadline", "REAL", "DOUBLE PRECISION"),
    ("reserved_steps", "INTEGER", "INTEGER"),
    ("reserved_tokens", "INTEGER", "BIGINT"),
    ("reserved_cost", "REAL", "DOUBLE PRECISION"),
    ("child_steps", "INTEGER NOT NULL DEFAULT 0", "INTEGER NOT NULL DEFAULT 0"),
    ("child_tokens", "INTEGER NOT NULL DEFAULT 0", "BIGINT NOT NULL DEFAULT 0"),
    ("child_cost", "REAL NOT NULL DEFAULT 0", "DOUBLE PRECISION NOT NULL DEFAULT 0"),
)
SQLITE_COLUMNS = tuple(("runs", name, lite) for name, lite, _ in _COLUMNS)
POSTGRES_SCHEMA = [
    f"ALTER TABLE runs ADD COLUMN IF NOT EXISTS {name} {pg}" for name, _, pg in _COLUMNS
]

# Cost is a float: a reservation of exactly the remainder must fit despite rounding.
_COST_SLACK = 1e-9
_TERMINAL = tuple(sorted(TERMINAL_STATUSES))

# SQLite: the row's totals plus the journal past `last_seq` (what readers add, see sqlite.py).
_TAIL = "FROM events WHERE run = runs.no AND seq > runs.last_seq AND kind = 'model_responded'"
_JSON = "json_extract(CAST(data AS TEXT), '$.{}')"
_SQLITE_OWN = (
    f"(steps + (SELECT count(*) {_TAIL}))",
    f"(input_tokens + output_tokens + (SELECT coalesce(sum({_JSON.format('input_tokens')}"
    f" + {_JSON.format('output_tokens')}), 0) {_TAIL}))",
    f"(cost + (SELECT coalesce(sum({_JSON.format('cost')}), 0.0) {_TAIL}))",
)
_POSTGRES_OWN = ("steps", "(input_tokens + output_tokens)", "cost")


def _reserve_sql(p: str, own: tuple[str, str, str]) -> str:
    """Add a child's reservation to its parent's `child_*` only if it fits every limit and
    the parent is still running and inside its deadline; RETURNING tells whether it did."""
    steps, tokens, cost = own
    terminal = ", ".join(f"'{s}'" for s in _TERMINAL)
    return (
        f"UPDATE runs SET child_steps = child_steps + {p}, child_tokens = child_tokens + {p},"
        f" child_cost = child_cost + {p} WHERE id = {p} AND status NOT IN ({terminal})"
        f" AND (limit_steps IS NULL OR {steps} + child_steps + {p} <= limit_steps)"
        f" AND (limit_tokens IS NULL OR {tokens} + child_tokens + {p} <= limit_tokens)"
        f" AND (limit_cost IS NULL OR {cost} + child_cost + {p} <= limit_cost + {_COST_SLACK})"
        f" AND (deadline IS NULL OR deadline > {p}) RETURNING id"
    )


_SQLITE_RESERVE = _reserve_sql("?", _SQLITE_OWN)
_POSTGRES_RESERVE = _reserve_sql("%s", _POSTGRES_OWN)


def _reserve_params(run: RunRecord, now: float) -> tuple[Any, ...]:
    steps, tokens, cost = run.reserved_steps or 0, run.reserved_tokens or 0, run.reserved_cost
    cost = cost or 0.0
    return (steps, tokens, cost, run.parent_id, steps, tokens, cost, now)


def _refused(run: RunRecord) -> BudgetExhausted:
    return BudgetExhausted(
        f"run {run.parent_id} has not enough budget left for child run {run.id} (another"
        " child took it first, or the parent finished or passed its deadline): ask the child"
        " for less, raise the parent's limits, or wait for its other children to finish"
    )


def _holds(run: RunRecord) -> bool:
    return run.parent_id is not None and run.reserved_steps is not None


def budget_values(run: RunRecord) -> tuple[Any, ...]:
    return (
        run.limit_steps,
        run.limit_tokens,
        run.limit_cost,
        run.deadline,
        run.reserved_steps,
        run.reserved_tokens,
        run.reserved_cost,
    )


# A new run's limits, deadline and reservation: inserted with its row, in this order.
BUDGET_COLUMNS = (
    "limit_steps, limit_tokens, limit_cost, deadline, reserved_steps, reserved_tokens,"
    " reserved_cost"
)
_HELD = (
    "SELECT parent_id, reserved_steps, reserved_tokens, reserved_cost, child_steps,"
    " child_tokens, child_cost FROM runs WHERE {key} = {p} AND reserved_steps IS NOT NULL"
)
_CHARGE = (
    "UPDATE runs SET child_steps = child_steps + {p}, child_tokens = child_tokens + {p},"
    " child_cost = child_cost + {p} WHERE id = {p}"
)
_SETTLED = (
    "UPDATE runs SET reserved_steps = NULL, reserved_tokens = NULL, reserved_cost = NULL"
    " WHERE {key} = {p}"
)


def _charge(held: Sequence[Any], summary: RunSummary) -> tuple[Any, ...]:
    """What the parent's `child_*` change by: the child's spend (own and its children's)
    minus what it held. Negative releases the unused part; positive charges an overshoot."""
    parent, r_steps, r_tokens, r_cost, c_steps, c_tokens, c_cost = held
    used = (
        summary.steps + c_steps,
        summary.input_tokens + summary.output_tokens + c_tokens,
        summary.cost + c_cost,
    )
    return (used[0] - r_steps, used[1] - r_tokens, used[2] - (r_cost or 0.0), parent)


def is_terminal(summary: RunSummary) -> bool:
    return summary.status in TERMINAL_STATUSES


# -- SQLite (called inside the store's write transaction) ------------------------------


def sqlite_reserve(conn: sqlite3.Connection, runs: Sequence[RunRecord], now: float) -> list[bool]:
    """Reserve each child's budget from its parent; False where it does not fit (the run
    must then not be inserted). The write lock is held: nothing else moves meanwhile."""
    fits = []
    for run in runs:
        if not _holds(run):
            fits.append(True)
            continue
        row = conn.execute(_SQLITE_RESERVE, _reserve_params(run, now)).fetchone()
        fits.append(row is not None)
    return fits


def sqlite_refused(run: RunRecord) -> BudgetExhausted:
    """The error for a create `sqlite_reserve` refused."""
    return _refused(run)


def sqlite_settle(conn: sqlite3.Connection, finished: Sequence[tuple[int, RunSummary]]) -> None:
    """Settle the children that just finished (row number, final summary) with their parents."""
    for no, summary in finished:
        held = conn.execute(_HELD.format(p="?", key="no"), (no,)).fetchone()
        if held is None:
            continue
        conn.execute(_CHARGE.format(p="?"), _charge(held, summary))
        conn.execute(_SETTLED.format(p="?", key="no"), (no,))


# -- PostgreSQL (called inside the store's transaction) ---------------------------------


async def postgres_reserve(conn: psycopg.AsyncConnection, run: RunRecord, now: float) -> None:
    """Reserve a child's budget from its parent, or raise `BudgetExhausted` (the caller's
    transaction then rolls back). The parent's row stays locked to the commit, so a
    concurrent create, from any process, waits and then sees this reservation."""
    if not _holds(run):
        return
    cur = await conn.execute(_POSTGRES_RESERVE, _reserve_params(run, now))
    if await cur.fetchone() is None:
        raise _refused(run)


async def postgres_settle(
    conn: psycopg.AsyncConnection, finished: Sequence[tuple[str, RunSummary]]
) -> None:
    """Settle the children that just finished (run id, final summary) with their parents,
    parents in id order (two batches lock rows in the same order)."""
    charges = []
    for run_id, summary in finished:
        cur = await conn.execute(_HELD.format(p="%s", key="id"), (run_id,))
        held = await cur.fetchone()
        if held is not None:
            charges.append((run_id, _charge(held, summary)))
    for run_id, charge in sorted(charges, key=lambda c: c[1][3]):
        await conn.execute(_CHARGE.format(p="%s"), charge)
        await conn.execute(_SETTLED.format(p="%s", key="id"), (run_id,))
