"""The learning router's state and feedback on PostgreSQL (statements in
`store/router_sql.py`)."""

from __future__ import annotations

import time
from typing import Any

from bosun.store import router_sql as q
from bosun.store.records import Feedback

P = q.PG


class PostgresRouter:
    _session: Any

    async def router_state(self, key: str) -> tuple[int, bytes] | None:
        async with self._session("read the router's state") as conn:
            row = await (await conn.execute(P["READ_STATE"], (key,))).fetchone()
        return (int(row[0]), bytes(row[1])) if row else None

    async def router_state_put(self, key: str, version: int, state: bytes) -> bool:
        now = time.time()
        async with self._session("store the router's state") as conn:
            if version == 0:
                cur = await conn.execute(P["INSERT_STATE"], (key, state, now))
            else:
                cur = await conn.execute(P["SET_STATE"], (state, now, key, version))
            return cur.rowcount == 1

    async def router_state_reset(self, prefix: str) -> int:
        async with self._session("reset the router") as conn:
            cur = await conn.execute(P["DELETE_STATE"], (prefix, prefix + "/%"))
            return cur.rowcount

    async def router_states(self) -> list[tuple[str, int, float]]:
        async with self._session("list the router's states") as conn:
            rows = await (await conn.execute(q.LIST_STATE)).fetchall()
        return [(k, int(v), float(t)) for k, v, t in rows]

    async def add_feedback(self, feedback: Feedback) -> None:
        f = feedback
        async with self._session("record feedback") as conn:
            await conn.execute(
                P["INSERT_FEEDBACK"], (f.run_id, f.ts, f.score, f.source, f.tenant, f.comment)
            )

    async def feedback(
        self, *, tenant: str | None = None, run_id: str | None = None
    ) -> list[Feedback]:
        async with self._session("read feedback") as conn:
            if run_id is not None:
                cur = await conn.execute(P["FEEDBACK_OF_RUN"], (run_id,))
            else:
                cur = await conn.execute(P["FEEDBACK_OF"], (tenant or "default",))
            rows = await cur.fetchall()
        return [Feedback(*row) for row in rows]
