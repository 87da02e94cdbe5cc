"""One numbered migration mechanism for both backends.

Each backend lists its layout's history as numbered `Step`s (`bosun.store.sqlite.migrations`,
`bosun.store.postgres.migrations`); the steps a database has had are rows of
`bosun_migrations` (number, name, when). Opening a store runs what is missing, in order, in
one transaction with the rows that record it, so a crash halfway leaves the database as it
was and two processes opening it at once migrate it once.

- A new database gets the current layout in one go (`create`) and every step recorded: its
  layout *is* the result of them all, and tests check that it equals what the steps make of
  each earlier layout.
- A database from before this table existed is adopted: SQLite's `PRAGMA user_version` N
  counts as steps 1..N applied; PostgreSQL kept no marker, and its steps are written to be
  idempotent (`IF NOT EXISTS`), so every one runs and is recorded.
- A database with a step this Bosun does not know was written by a newer Bosun: refused,
  with the fix (upgrade Bosun), never opened and half-understood.

This module is the part both backends share: the step type and the plan. Each backend runs
the plan with its own driver (sqlite3 is synchronous, psycopg asynchronous).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from bosun.errors import NewerDatabase

RECORD = "INSERT INTO bosun_migrations(number, name, applied_at) VALUES (?, ?, ?)"
APPLIED = "SELECT number FROM bosun_migrations ORDER BY number"


@dataclass(frozen=True, slots=True)
class Step:
    """One change of a backend's layout. `apply` takes the backend's connection, inside the
    migration's transaction; None for the first layout, which is only ever adopted or
    created whole."""

    number: int
    name: str
    apply: Callable[[Any], Any] | None


def check(steps: Sequence[Step]) -> None:
    """Steps are numbered 1, 2, 3 ... in order, with no gap: a number is never reused."""
    numbers = [s.number for s in steps]
    if numbers != list(range(1, len(steps) + 1)):
        raise ValueError(f"migration steps must be numbered 1..{len(steps)}, got {numbers}")


def latest(steps: Sequence[Step]) -> int:
    return steps[-1].number if steps else 0


def pending(steps: Sequence[Step], applied: Iterable[int], *, what: str) -> list[Step]:
    """The steps `applied` lacks, in order; `NewerDatabase` if it has one past them all."""
    done = set(applied)
    unknown = sorted(n for n in done if n > latest(steps))
    if unknown:
        raise NewerDatabase(
            f"{what} has migrations {unknown}, newer than this Bosun (which knows 1.."
            f"{latest(steps)}): a newer Bosun wrote it; upgrade Bosun to open it"
        )
    return [s for s in steps if s.number not in done]


def adopted(marker: int) -> range:
    """The steps a database at layout `marker` (from before `bosun_migrations`) has had."""
    return range(1, marker + 1)
