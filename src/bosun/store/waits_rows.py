"""Durable waits, as rows: the record, and the SQL both stores share.

Why here, written once: the rules of a wait (settle only a pending wait, wake a run only
when nothing it waits on is pending, keep a signal nobody waits for yet) are the same on
SQLite and PostgreSQL, and were once encoded twice and drifted. The SQL below is written
with `?` placeholders; PostgreSQL's store runs it through `pg()`.

The one wake path: `SETTLE` (compare-and-set pending -> settled/expired/cancelled) then
the wake rule (`store/rules.wakes`: a parked run with no pending wait left goes back to the
queue), read from `WAKE_FACTS` and written with `REQUEUE`, in one transaction.
Approvals, signals, child runs, remote tasks and timers all go through it, and so does the
check made when a run parks (its waits may have settled before it parked).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from bosun.journal.events import ApprovalRequested, WaitRequested
from bosun.spec.vocab import TERMINAL_STATUSES, ApprovalStatus, RunStatus, WaitKind, WaitStatus

WAIT_COLUMN_NAMES = (
    "id",
    "run_id",
    "kind",
    "key",
    "call_id",
    "deadline",
    "on_deadline",
    "status",
    "result",
    "created_at",
    "resolved_at",
)
WAIT_COLUMNS = ", ".join(WAIT_COLUMN_NAMES)

TERMINAL_SQL = "(" + ", ".join(f"'{s}'" for s in sorted(TERMINAL_STATUSES)) + ")"


@dataclass(frozen=True, slots=True)
class WaitRecord:
    """One wait. The journal holds its request and (once the run wakes) its resolution;
    this row is where a delivery lands first, exactly once."""

    id: str
    run_id: str
    kind: str  # WaitKind
    key: str  # signal name, child run id, remote task id, approval id; "" for a timer
    call_id: str
    deadline: float | None
    on_deadline: Any
    status: str  # WaitStatus
    result: Any
    created_at: float
    resolved_at: float | None


def wait_from_row(row: Any) -> WaitRecord:
    """Map a row selected as `WAIT_COLUMNS` by column name (never by position downstream)."""
    values = dict(zip(WAIT_COLUMN_NAMES, row, strict=True))
    for name in ("on_deadline", "result"):
        raw = values[name]
        values[name] = None if raw is None else orjson.loads(raw)
    return WaitRecord(**values)


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


# The event kinds that create a wait's row (see `insert_params`): a commit with none of them,
# whose run neither parks nor ends, has nothing for the waits to do (nearly every commit).
WAIT_EVENT_KINDS = frozenset({"wait_requested", "approval_requested"})


def insert_params(run_id: str, event: Any, now: float) -> tuple | None:
    """`INSERT`'s parameters for the wait an event requests (a `WaitRequested`, or an
    `ApprovalRequested`: an approval is a wait keyed by its id), else None."""
    if isinstance(event, WaitRequested):
        return (
            event.wait_id, run_id, event.wait_kind, event.key, event.call_id, event.deadline,
            dumps(event.on_deadline), event.ts or now,
        )  # fmt: skip
    if isinstance(event, ApprovalRequested):
        return (
            event.approval_id, run_id, WaitKind.APPROVAL, event.approval_id, event.call_id,
            event.expires_at, None, event.ts or now,
        )  # fmt: skip
    return None


def pg(sql: str) -> str:
    """The same statement with PostgreSQL's placeholders."""
    return sql.replace("?", "%s")


WAITS_DDL = """
CREATE TABLE IF NOT EXISTS waits (
    id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    call_id TEXT NOT NULL,
    deadline DOUBLE PRECISION,
    on_deadline TEXT,
    status TEXT NOT NULL,
    result TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    resolved_at DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS waits_by_run ON waits(run_id, status);
CREATE INDEX IF NOT EXISTS waits_by_key ON waits(kind, key, status);
CREATE INDEX IF NOT EXISTS waits_due ON waits(status, deadline);
CREATE TABLE IF NOT EXISTS signals (
    id {serial},
    run_id TEXT NOT NULL,
    name TEXT NOT NULL,
    payload TEXT,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS signals_by_run ON signals(run_id, name, id);
"""

# (id, run_id, kind, key, call_id, deadline, on_deadline, created_at)
INSERT = (
    f"INSERT INTO waits({WAIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, '{WaitStatus.PENDING}',"
    " NULL, ?, NULL) ON CONFLICT (id) DO NOTHING"
)
# (status, result, resolved_at, id) -> (run_id, kind) when this call won the race
SETTLE = (
    "UPDATE waits SET status=?, result=?, resolved_at=? WHERE id=?"
    f" AND status='{WaitStatus.PENDING}' RETURNING run_id, kind"
)
# (run_id) -> the ids of the run's waits that have settled (expired, cancelled): a woken
# run reads the rows of those its calls still wait on (`settled_waits`), not every wait
SETTLED_IDS = f"SELECT id FROM waits WHERE run_id=? AND status<>'{WaitStatus.PENDING}'"
# (run_id) -> how many of the run's child waits are pending. A parking run counts the child
# waits its journal has open (`RunWaiting.children`): the difference is the children that
# ended since it last looked, whose answers wake it at once (`rules.wakes`)
PENDING_CHILDREN = (
    f"SELECT COUNT(*) FROM waits WHERE run_id=? AND status='{WaitStatus.PENDING}'"
    f" AND kind='{WaitKind.CHILD}'"
)


def parked_children(events: Any) -> int:
    """The child waits a commit parks its run on (its `RunWaiting`'s count), 0 if it does
    not park."""
    for event in reversed(events):
        if event.kind == "run_waiting":
            return event.children
    return 0


# (updated_at, run_id, run_id): the one wake path
# (run_id, run_id) -> the facts the wake rule (`rules.wakes`) needs: the run's status and
# how many of its waits are pending. Read under the run's lock (SQLite: the write
# transaction; PostgreSQL: the append's or the delivery's FOR UPDATE on the run's row).
WAKE_FACTS = (
    "SELECT status, (SELECT COUNT(*) FROM waits WHERE run_id=?"
    f" AND status='{WaitStatus.PENDING}') FROM runs WHERE id=?"
)
# (updated_at, run_id): a parked run a kill switch covers goes to the queue, to be killed
WAKE_FOR_KILL = (
    f"UPDATE runs SET status='{RunStatus.QUEUED}', updated_at=? WHERE id=?"
    f" AND status IN ('{RunStatus.WAITING}', '{RunStatus.WAITING_APPROVAL}') RETURNING id"
)
# (updated_at, run_id): what the wake rule decided
REQUEUE = f"UPDATE runs SET status='{RunStatus.QUEUED}', updated_at=? WHERE id=?"
# (run_id, name) -> the oldest kept signal of that name, removed (it is consumed)
TAKE_SIGNAL = (
    "DELETE FROM signals WHERE id = (SELECT id FROM signals WHERE run_id=? AND name=?"
    " ORDER BY id LIMIT 1) RETURNING payload"
)
# (run_id, name, payload, created_at)
KEEP_SIGNAL = "INSERT INTO signals(run_id, name, payload, created_at) VALUES (?, ?, ?, ?)"
# (run_id, name) -> the oldest pending wait for that signal
SIGNAL_WAIT = (
    f"SELECT id FROM waits WHERE run_id=? AND kind='{WaitKind.SIGNAL}' AND key=?"
    f" AND status='{WaitStatus.PENDING}' ORDER BY created_at, id LIMIT 1"
)
# (kind, key) -> pending waits on that key (children, remote tasks)
KEYED_WAITS = (
    f"SELECT {WAIT_COLUMNS} FROM waits WHERE kind=? AND key=? AND status='{WaitStatus.PENDING}'"
    " ORDER BY created_at, id"
)
# (key prefix + '%', limit) -> pending remote waits whose key starts with a kind's prefix
# (`a2a:`): what a kind's watcher follows (`tools/a2a/watcher.py`)
REMOTE_WAITS = (
    f"SELECT {WAIT_COLUMNS} FROM waits WHERE kind='{WaitKind.REMOTE}'"
    f" AND status='{WaitStatus.PENDING}' AND key LIKE ? ORDER BY created_at, id LIMIT ?"
)


def like_prefix(prefix: str) -> str:
    """A LIKE pattern matching keys that start with `prefix` (which has no wildcards)."""
    if not prefix or any(c in prefix for c in "%_\\"):
        raise ValueError(f"a remote wait key prefix is plain text: {prefix!r}")
    return prefix + "%"


# (run_id, run_id) -> whether a run that ended has anything to close: waits of its own
# (approvals among them) or a parent waiting on it. Nearly always false, so a run's end
# costs this one indexed read and nothing more.
ENDED_HAS_WAITS = (
    f"SELECT EXISTS (SELECT 1 FROM waits WHERE run_id=? AND status='{WaitStatus.PENDING}')"
    f" OR EXISTS (SELECT 1 FROM waits WHERE kind='{WaitKind.CHILD}' AND key=?"
    f" AND status='{WaitStatus.PENDING}')"
)
# (decided_at, run_id): a run that ended leaves no approval for anyone to decide
CANCEL_APPROVALS = (
    f"UPDATE approvals SET status='{ApprovalStatus.CANCELLED}', decided_at=?,"
    " comment='the run ended before anyone decided' WHERE run_id=?"
    f" AND status='{ApprovalStatus.PENDING}'"
)
# (resolved_at, run_id): a run that ended waits for nothing any more
CANCEL = (
    f"UPDATE waits SET status='{WaitStatus.CANCELLED}', resolved_at=? WHERE run_id=?"
    f" AND status='{WaitStatus.PENDING}'"
)
# (now): deadlines passed (approvals expire by their own policy: `expire_approvals`), and
# child waits whose child has ended (a backstop: the child's last append settles them)
DUE = (
    f"SELECT {WAIT_COLUMNS} FROM waits w WHERE w.status='{WaitStatus.PENDING}' AND ("
    f" (w.kind <> '{WaitKind.APPROVAL}' AND w.deadline IS NOT NULL AND w.deadline <= ?)"
    f" OR (w.kind='{WaitKind.CHILD}' AND EXISTS (SELECT 1 FROM runs c WHERE c.id = w.key"
    f" AND c.status IN {TERMINAL_SQL})))"
    " ORDER BY w.deadline, w.id LIMIT 500"
)
# Upgrades: approvals pending before waits existed get theirs (an approval's wait id is its id).
WAITS_FOR_PENDING_APPROVALS = (
    f"INSERT INTO waits({WAIT_COLUMNS}) SELECT id, run_id, '{WaitKind.APPROVAL}', id, call_id,"
    f" expires_at, NULL, '{WaitStatus.PENDING}', NULL, created_at, NULL FROM approvals"
    " WHERE status='pending' ON CONFLICT (id) DO NOTHING"
)
# (run_id) -> what a finished child reports to its parent's wait
CHILD_OUTCOME = "SELECT id, status, output, reason FROM runs WHERE id=?"


def child_result(row: Any) -> dict[str, Any]:
    """A child run's outcome as its parent's call result: (id, status, output, reason)."""
    run_id, status, output, reason = row
    return {"run_id": run_id, "status": status, "output": output, "reason": reason}


__all__ = ["WaitRecord", "child_result", "wait_from_row"]
