"""The learning router's state and feedback on SQLite (statements in `store/router_sql.py`)."""

from __future__ import annotations

import sqlite3
import time

from bosun.store import router_sql as q
from bosun.store.records import Feedback


class SqliteRouter:
    conn: sqlite3.Connection

    async def router_state(self, key: str) -> tuple[int, bytes] | None:
        row = self.conn.execute(q.READ_STATE, (key,)).fetchone()
        return (int(row[0]), bytes(row[1])) if row else None

    async def router_state_put(self, key: str, version: int, state: bytes) -> bool:
        now = time.time()
        if version == 0:
            return self.conn.execute(q.INSERT_STATE, (key, state, now)).rowcount == 1
        return self.conn.execute(q.SET_STATE, (state, now, key, version)).rowcount == 1

    async def router_state_reset(self, prefix: str) -> int:
        return self.conn.execute(q.DELETE_STATE, (prefix, prefix + "/%")).rowcount

    async def router_states(self) -> list[tuple[str, int, float]]:
        return [(k, int(v), float(t)) for k, v, t in self.conn.execute(q.LIST_STATE)]

    async def add_feedback(self, feedback: Feedback) -> None:
        f = feedback
        self.conn.execute(
            q.INSERT_FEEDBACK, (f.run_id, f.ts, f.score, f.source, f.tenant, f.comment)
        )

    async def feedback(
        self, *, tenant: str | None = None, run_id: str | None = None
    ) -> list[Feedback]:
        if run_id is not None:
            rows = self.conn.execute(q.FEEDBACK_OF_RUN, (run_id,))
        else:
            rows = self.conn.execute(q.FEEDBACK_OF, (tenant or "default",))
        return [Feedback(*row) for row in rows]
