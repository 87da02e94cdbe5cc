"""SQL written once: the statements on which SQLite and PostgreSQL agree.

Each statement is written with SQLite's `?` placeholders; the PostgreSQL store uses
`pg(statement)`, the same text with psycopg's `%s`, converted once at import (never per
call). A statement lives here only when both dialects read it the same way; where they
differ (the journal's layout, `FOR UPDATE SKIP LOCKED`, the database clock, JSON
operators) each backend keeps its own, next to the code that runs it.
"""

from __future__ import annotations

from bosun.spec.vocab import TERMINAL_STATUSES
from bosun.store.trees import subtree


def pg(statement: str) -> str:
    """`statement` with psycopg's placeholders: each `?` outside a quoted literal becomes
    `%s`, and a literal `%` is doubled (psycopg would read it as a placeholder)."""
    out: list[str] = []
    quoted = False
    for char in statement:
        if char == "'":
            quoted = not quoted
            out.append(char)
        elif char == "%":
            out.append("%%")
        elif char == "?" and not quoted:
            out.append("%s")
        else:
            out.append(char)
    return "".join(out)


# Statuses a run never leaves, as a literal list both dialects read.
TERMINAL = "(" + ", ".join(f"'{s}'" for s in sorted(TERMINAL_STATUSES)) + ")"
# The run a `?` names and every run below it (cancels and pauses cascade down the tree).
SUBTREE = subtree("CAST(? AS TEXT)")

# -- runs -------------------------------------------------------------------

# What every append writes to its run's row (the summary), then `?` for the status where it
# changes: values from `rows.summary_values`.
SUMMARY_SET = (
    "steps=?, tool_calls=?, input_tokens=?, output_tokens=?, cost=?, reason=?, output=?,"
    " finished_at=?, updated_at=?, last_seq=coalesce(?, last_seq)"
)
RELEASE = "UPDATE runs SET lease_owner=NULL, lease_expires_at=NULL WHERE id=? AND lease_owner=?"
# (status, reason, now, run id)
SET_STATUS = (
    f"UPDATE runs SET status=?, reason=?, updated_at=? WHERE id=? AND status NOT IN {TERMINAL}"
)
# (paused, waiting, waiting approval, queued, run id): a paused or parked run goes back to
# the queue, to be finished as cancelled.
REQUEST_CANCEL = (
    "UPDATE runs SET cancel_requested=true,"
    " status=CASE WHEN status IN (?, ?, ?) THEN ? ELSE status END"
    f" WHERE id IN {SUBTREE} AND status NOT IN {TERMINAL} RETURNING id"
)
# (run id, paused)
REQUEST_PAUSE = (
    f"UPDATE runs SET pause_requested=true WHERE id IN {SUBTREE} AND status NOT IN {TERMINAL}"
    " AND status <> ? RETURNING id"
)
# (queued, now, run id, paused)
UNPAUSE = (
    "UPDATE runs SET status=?, pause_requested=false, updated_at=? WHERE id=? AND status=?"
    " RETURNING id"
)


def run_filters(**values: object) -> tuple[list[str], list[object]]:
    """`list_runs`' WHERE clauses (`?` placeholders) and their values, for the filters given
    (a None filter matches every run). The tag filter is each dialect's own (JSON)."""
    where: list[str] = []
    params: list[object] = []
    for name, value in values.items():
        if value is not None:
            where.append(_RUN_FILTERS[name])
            params.append(value)
    return where, params


_RUN_FILTERS = {
    "status": "r.status=?",
    "agent": "r.agent=?",
    "tenant": "r.tenant=?",
    "user": "r.user_id=?",
    "since": "r.created_at>=?",
    "until": "r.created_at<?",
    "parent_id": "r.parent_id=?",
    "root_id": "r.root_id=?",
}
RUNS_BY_TENANT = "SELECT tenant, count(*) FROM runs GROUP BY tenant"
KEYED_RUN_ID = "SELECT id FROM runs WHERE tenant=? AND idempotency_key=?"

# -- approvals ----------------------------------------------------------------

APPROVAL_COLUMNS = (
    "id, run_id, call_id, tenant, agent, tool, arguments, role, rule, reason, status,"
    " created_at, expires_at, on_expiry, escalate_to, decided_by, decided_at, comment,"
    " edited_arguments, replaces"
)
# The 15 values an `ApprovalRequested` event gives; the decision's columns start empty.
INSERT_APPROVAL = (
    f"INSERT INTO approvals({APPROVAL_COLUMNS}) VALUES"
    " (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,NULL,NULL,NULL,NULL,NULL)"
)
SELECT_APPROVALS = (
    f"SELECT {APPROVAL_COLUMNS} FROM approvals WHERE {{where}} ORDER BY created_at, id"
)


def approval_filters(**values: str | None) -> tuple[str, list[object]]:
    """`list_approvals`' WHERE condition (`?` placeholders) and its values: each filter given
    (status, tenant, run_id) must match; none given matches every approval."""
    where = [f"{column}=?" for column, value in values.items() if value is not None]
    return " AND ".join(where) or "1=1", [v for v in values.values() if v is not None]


# (decision, by, now, comment, arguments, approval id, pending)
RESOLVE_APPROVAL = (
    "UPDATE approvals SET status=?, decided_by=?, decided_at=?, comment=?, edited_arguments=?"
    f" WHERE id=? AND status=? RETURNING {APPROVAL_COLUMNS}"
)
# (expired or escalated, now, approval id)
CLOSE_BY_EXPIRY = (
    "UPDATE approvals SET status=?, decided_by='expiry', decided_at=? WHERE id=?"
    f" RETURNING {APPROVAL_COLUMNS}"
)
# (new id, role, pending, now, old id): the escalation, a copy for the next role.
ESCALATE = (
    f"INSERT INTO approvals({APPROVAL_COLUMNS}) SELECT ?, run_id, call_id, tenant, agent,"
    " tool, arguments, ?, rule, reason, ?, ?, NULL, 'deny', NULL, NULL, NULL, NULL, NULL, id"
    f" FROM approvals WHERE id=? RETURNING {APPROVAL_COLUMNS}"
)

# -- kill switches and breakers --------------------------------------------------

KILL_SWITCH_COLUMNS = "scope, reason, set_by, set_at"
SET_KILL_SWITCH = (
    f"INSERT INTO kill_switches({KILL_SWITCH_COLUMNS}) VALUES (?,?,?,?) ON CONFLICT (scope)"
    " DO UPDATE SET reason=EXCLUDED.reason, set_by=EXCLUDED.set_by, set_at=EXCLUDED.set_at"
)
CLEAR_KILL_SWITCH = "DELETE FROM kill_switches WHERE scope=? RETURNING reason"
KILL_SWITCHES = f"SELECT {KILL_SWITCH_COLUMNS} FROM kill_switches ORDER BY set_at"
BREAKER_COLUMNS = "key, failures, opened_at, probe_until"
BREAKERS = f"SELECT {BREAKER_COLUMNS} FROM breakers ORDER BY key"
CLOSE_BREAKER = "DELETE FROM breakers WHERE key=?"
BREAKER_OPENED_AT = "SELECT opened_at FROM breakers WHERE key=?"

# -- audit ---------------------------------------------------------------------

LAST_AUDIT = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"
INSERT_AUDIT = (
    "INSERT INTO audit(seq, ts, tenant, actor, action, subject, data, prev_hash, hash)"
    " VALUES (?,?,?,?,?,?,?,?,?)"
)
AUDIT_RECORDS = (
    "SELECT seq, ts, actor, action, subject, data, tenant, prev_hash, hash FROM audit"
    " WHERE seq > ? ORDER BY seq"
)
AUDIT_HEAD_COLUMNS = "seq, hash, count, ts"
AUDIT_HEAD = f"SELECT {AUDIT_HEAD_COLUMNS} FROM audit_head"
# (seq, hash, records added, now): in the transaction that appended the records.
MOVE_HEAD = "UPDATE audit_head SET seq=?, hash=?, count=count+?, ts=? WHERE id=1"

# -- access: API keys and console sessions ------------------------------------------

KEY_COLUMNS = "id, tenant, role, name, hash, created_at, revoked_at, last_used_at, approves"
INSERT_KEY = f"INSERT INTO api_keys({KEY_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)"
KEY_BY_ID = f"SELECT {KEY_COLUMNS} FROM api_keys WHERE id=?"
KEYS = f"SELECT {KEY_COLUMNS} FROM api_keys"
KEYS_OF_TENANT = f"SELECT {KEY_COLUMNS} FROM api_keys WHERE tenant=?"
KEYS_ORDER = " ORDER BY created_at, id"
REVOKE_KEY = "UPDATE api_keys SET revoked_at=? WHERE id=? AND revoked_at IS NULL RETURNING id"
END_SESSIONS_OF_KEY = "DELETE FROM console_sessions WHERE key_id=?"
TOUCH_KEY = "UPDATE api_keys SET last_used_at=? WHERE id=?"
SESSION_COLUMNS = "token_hash, key_id, csrf, created_at, expires_at"
INSERT_SESSION = f"INSERT INTO console_sessions({SESSION_COLUMNS}) VALUES (?,?,?,?,?)"
LIVE_SESSION = f"SELECT {SESSION_COLUMNS} FROM console_sessions WHERE token_hash=? AND expires_at>?"
# (token hash, now): logging out also drops every expired session.
END_SESSION = "DELETE FROM console_sessions WHERE token_hash=? OR expires_at<?"

# -- observe -------------------------------------------------------------------

from bosun.store.observing import FINDINGS_COLUMNS  # noqa: E402 -- one list for the row type

INSERT_FINDING = (
    f"INSERT INTO findings({FINDINGS_COLUMNS}) VALUES (?,?,?,?,?,?,?) ON CONFLICT DO NOTHING"
)
FINDINGS = f"SELECT {FINDINGS_COLUMNS} FROM findings WHERE ts >= ?"
LIVE_RUNS = f"SELECT agent, status, count(*) FROM runs WHERE status NOT IN {TERMINAL} GROUP BY agent, status"
ORPHANED = (
    "SELECT count(*) FROM runs WHERE status = 'running'"
    " AND (lease_expires_at IS NULL OR lease_expires_at < ?)"
)
APPROVALS_PENDING = "SELECT count(*), min(created_at) FROM approvals WHERE status = 'pending'"
APPROVALS_RESOLVED = (
    "SELECT count(*), coalesce(sum(CASE WHEN status = 'denied'"
    " OR edited_arguments IS NOT NULL THEN 1 ELSE 0 END), 0)"
    " FROM approvals WHERE status IN ('approved', 'denied')"
)
KILL_SCOPES = "SELECT scope FROM kill_switches"
# The columns of a usage row of a run whose journal was removed (its totals stand in).
REMOVED_USAGE = (
    "SELECT id, agent, tenant, user_id, session, tags, finished_at, input_tokens,"
    " output_tokens, cost, coalesce(root_id, id) FROM runs WHERE journal_deleted = true"
    " AND finished_at >= ? AND finished_at < ?"
)

# -- rate limits ------------------------------------------------------------

# (key, [now,] window_seconds, window_seconds) -> the count in the key's window, this take
# included; `{now}` is the clock (SQLite: a `?` for the caller's; PostgreSQL: the database's). A window opens at the first take after the last one closed (not on the clock's
# minute), so a burst is never split in two by a boundary that falls in its middle. The
# SET expressions read the row as it was (both dialects), so both CASEs see the old window.
TAKE_RATE = (
    "INSERT INTO rate_counters(key, window_start, count) VALUES (?, {now}, 1)"
    " ON CONFLICT (key) DO UPDATE SET"
    " count = CASE WHEN EXCLUDED.window_start - rate_counters.window_start < ?"
    " THEN rate_counters.count + 1 ELSE 1 END,"
    " window_start = CASE WHEN EXCLUDED.window_start - rate_counters.window_start < ?"
    " THEN rate_counters.window_start ELSE EXCLUDED.window_start END"
    " RETURNING count"
)
