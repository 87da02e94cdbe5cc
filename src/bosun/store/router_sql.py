"""The learning router's tables and statements, written once for both dialects.

`router_state` holds one row per learned model (a route, for one tenant or for all): its
sufficient statistics as bytes, and a version for compare-and-set, so two workers that
update at once never lose an update (the loser reads again and re-applies).
`router_feedback` holds every reward given to a run (a person's score, an approval's
outcome, a reviewer's veto), the record `bosun router evaluate` reads beside the journal.
"""

from __future__ import annotations

from bosun.store.sql import pg

ROUTER_STATE = """CREATE TABLE IF NOT EXISTS router_state (
    key TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    state {bytes} NOT NULL,
    updated_at {real} NOT NULL
)"""
ROUTER_FEEDBACK = """CREATE TABLE IF NOT EXISTS router_feedback (
    run_id TEXT NOT NULL,
    ts {real} NOT NULL,
    score {real} NOT NULL,
    source TEXT NOT NULL,
    tenant TEXT NOT NULL,
    comment TEXT
)"""
FEEDBACK_INDEX = "CREATE INDEX IF NOT EXISTS router_feedback_by_run ON router_feedback(run_id)"


def ddl_statements(render) -> tuple[str, ...]:
    """The tables and index, in `render`'s dialect (a fresh layout and migration 13)."""
    return (render(ROUTER_STATE), render(ROUTER_FEEDBACK), FEEDBACK_INDEX)


READ_STATE = "SELECT version, state FROM router_state WHERE key = ?"
INSERT_STATE = (
    "INSERT INTO router_state(key, version, state, updated_at) VALUES (?, 1, ?, ?)"
    " ON CONFLICT (key) DO NOTHING"
)
SET_STATE = (
    "UPDATE router_state SET version = version + 1, state = ?, updated_at = ?"
    " WHERE key = ? AND version = ?"
)
DELETE_STATE = "DELETE FROM router_state WHERE key = ? OR key LIKE ?"
LIST_STATE = "SELECT key, version, updated_at FROM router_state ORDER BY key"
INSERT_FEEDBACK = (
    "INSERT INTO router_feedback(run_id, ts, score, source, tenant, comment)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
FEEDBACK_OF = (
    "SELECT run_id, ts, score, source, tenant, comment FROM router_feedback"
    " WHERE tenant = ? ORDER BY ts"
)
FEEDBACK_OF_RUN = (
    "SELECT run_id, ts, score, source, tenant, comment FROM router_feedback"
    " WHERE run_id = ? ORDER BY ts"
)

PG = {name: pg(text) for name, text in globals().copy().items() if name.isupper() and "?" in text}
