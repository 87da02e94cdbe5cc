"""Sessions: the conversation so far, rebuilt from the journal of the session's runs.

A run with a `session` (and no parent: a child's conversation is the one its parent hands
it) sees, before its own input, the user input and final answer of every earlier top-level
run of that session in its tenant that had *finished before it was created*. That rule
reads only facts that never change once written (a run's creation and finish times, its
journal), so the conversation a run saw is the same when another worker resumes it after a
crash: nothing is copied, nothing can drift.

A session can be forked (`fork`: a new session that starts with the source's conversation
up to now, then goes its own way) or cleared (`clear`: later runs see nothing before it).
Both are append-only marks (`session_marks`), dated, so a run created before a clear still
sees what it saw. Runs that ended without an answer (failed, cancelled) add nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from bosun.errors import BosunError
from bosun.journal.events import RunFinished, RunStarted
from bosun.memory.db import Db
from bosun.store.base import Store

# The newest turns rebuilt for a run (each is one journal read); older ones are left out.
# The context policy (`bosun.memory.context`) then fits what is kept into the window.
MAX_TURNS = 200
FORK, CLEAR = "fork", "clear"
_MAX_NAME = 200


@dataclass(frozen=True, slots=True)
class Turn:
    """One earlier run of a session: what the user said, what the agent answered."""

    run_id: str
    session: str
    input: str
    output: str | None
    status: str
    created_at: float
    finished_at: float | None

    def messages(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = [{"role": "user", "content": self.input}]
        if self.output is not None:
            out.append({"role": "assistant", "content": self.output})
        return out


@dataclass(frozen=True, slots=True)
class SessionSummary:
    name: str
    runs: int
    first_at: float
    last_at: float
    forked_from: str | None = None
    cleared_at: float | None = None


_MARKS = (
    "SELECT kind, at, source, source_at FROM session_marks"
    " WHERE tenant = ? AND session = ? AND at < ? ORDER BY at"
)
_RUNS = (
    "SELECT id, status, created_at, finished_at FROM runs"
    " WHERE tenant = ? AND session = ? AND parent_id IS NULL AND finished_at IS NOT NULL"
    " AND finished_at < ? AND created_at >= ? ORDER BY created_at DESC LIMIT ?"
)


async def turns(
    store: Store, tenant: str, session: str, before: float, *, limit: int = MAX_TURNS
) -> list[Turn]:
    """The session's turns a run created at `before` sees, oldest first (see the module)."""
    db = Db(store)
    since, fork = 0.0, None
    for kind, at, source, source_at in await db.rows(
        _MARKS, (tenant, session, before), what=f"read the marks of session {session}"
    ):
        if kind == CLEAR:
            since, fork = at, None  # a clear drops a forked prefix too
        elif kind == FORK:
            fork = (source, source_at)
    rows = await db.rows(
        _RUNS, (tenant, session, before, since, limit), what=f"read the runs of session {session}"
    )
    own = [t for t in [await _turn(store, session, row) for row in reversed(rows)] if t]
    if fork is not None and len(own) < limit:
        source, source_at = fork
        prefix = await turns(store, tenant, source, min(before, source_at), limit=limit - len(own))
        return prefix + own
    return own


async def _turn(store: Store, session: str, row: Any) -> Turn | None:
    run_id, status, created_at, finished_at = row
    input_text, output = None, None
    for _, event in await store.events(run_id):
        if isinstance(event, RunStarted):
            input_text = event.input
        elif isinstance(event, RunFinished):
            output = event.output
    if input_text is None or output is None:  # its journal was collected, or no answer
        return None
    return Turn(run_id, session, input_text, output, status, created_at, finished_at)


async def conversation(store: Store, tenant: str, session: str, before: float) -> list[dict]:
    """The messages a run of `session` created at `before` continues (oldest first)."""
    out: list[dict[str, Any]] = []
    for turn in await turns(store, tenant, session, before):
        out.extend(turn.messages())
    return out


_LIST = (
    "SELECT session, count(*), min(created_at), max(created_at) FROM runs"
    " WHERE tenant = ? AND session IS NOT NULL AND parent_id IS NULL"
    " GROUP BY session ORDER BY max(created_at) DESC LIMIT ?"
)
_ALL_MARKS = "SELECT session, kind, at, source FROM session_marks WHERE tenant = ? ORDER BY at"


async def sessions(store: Store, tenant: str, *, limit: int = 100) -> list[SessionSummary]:
    """The tenant's sessions, the most recently active first (forked ones with no run yet
    too)."""
    db = Db(store)
    found: dict[str, SessionSummary] = {}
    for name, runs, first, last in await db.rows(_LIST, (tenant, limit), what="list sessions"):
        found[name] = SessionSummary(name, runs, first, last)
    for name, kind, at, source in await db.rows(_ALL_MARKS, (tenant,), what="list sessions"):
        old = found.get(name) or SessionSummary(name, 0, at, at)
        if kind == FORK:
            old = SessionSummary(old.name, old.runs, old.first_at, old.last_at, source, None)
        else:
            old = SessionSummary(
                old.name, old.runs, old.first_at, max(old.last_at, at), old.forked_from, at
            )
        found[name] = old
    return sorted(found.values(), key=lambda s: s.last_at, reverse=True)[:limit]


async def exists(store: Store, tenant: str, session: str) -> bool:
    db = Db(store)
    rows = await db.rows(
        "SELECT 1 FROM runs WHERE tenant = ? AND session = ? LIMIT 1",
        (tenant, session),
        what=f"look up session {session}",
    )
    rows = rows or await db.rows(
        "SELECT 1 FROM session_marks WHERE tenant = ? AND session = ? LIMIT 1",
        (tenant, session),
        what=f"look up session {session}",
    )
    return bool(rows)


def _check_name(name: str) -> None:
    if not name or len(name) > _MAX_NAME or not name.isprintable():
        raise BosunError(
            f"session name {name[:40]!r} is not usable: give 1..{_MAX_NAME} printable characters"
        )


async def fork(store: Store, tenant: str, source: str, new: str, *, actor: str = "") -> float:
    """Start session `new` with `source`'s conversation as of now; returns the fork's time."""
    _check_name(new)
    if not await exists(store, tenant, source):
        raise BosunError(f"no session {source!r} in tenant {tenant}: nothing to fork")
    if await exists(store, tenant, new):
        raise BosunError(f"session {new!r} already exists in tenant {tenant}: fork into a new name")
    now = time.time()
    await Db(store).run(
        [
            (
                "INSERT INTO session_marks(tenant, session, kind, at, source, source_at, actor)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (tenant, new, FORK, now, source, now, actor),
            )
        ],
        what=f"fork session {source} into {new}",
    )
    return now


async def clear(store: Store, tenant: str, session: str, *, actor: str = "") -> float:
    """Runs of `session` created from now on see nothing before this; returns its time.
    The earlier runs and their journals stay (they are the audit trail)."""
    if not await exists(store, tenant, session):
        raise BosunError(f"no session {session!r} in tenant {tenant}")
    now = time.time()
    await Db(store).run(
        [
            (
                "INSERT INTO session_marks(tenant, session, kind, at, source, source_at, actor)"
                " VALUES (?, ?, ?, ?, NULL, NULL, ?)",
                (tenant, session, CLEAR, now, actor),
            )
        ],
        what=f"clear session {session}",
    )
    return now
