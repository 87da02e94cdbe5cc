"""Access on PostgreSQL: API keys and web console sessions (the statements are
`bosun.store.sql`'s, in psycopg's placeholders)."""

from __future__ import annotations

import contextlib
import time

import psycopg

from bosun.store import sql
from bosun.store.records import ApiKey, ConsoleSession
from bosun.store.rows import key_from_row, key_values, session_from_row, session_values
from bosun.store.sql import pg

_INSERT_KEY = pg(sql.INSERT_KEY)
_KEY_BY_ID = pg(sql.KEY_BY_ID)
_KEYS = pg(sql.KEYS + sql.KEYS_ORDER)
_KEYS_OF_TENANT = pg(sql.KEYS_OF_TENANT + sql.KEYS_ORDER)
_REVOKE_KEY = pg(sql.REVOKE_KEY)
_END_SESSIONS_OF_KEY = pg(sql.END_SESSIONS_OF_KEY)
_TOUCH_KEY = pg(sql.TOUCH_KEY)
_INSERT_SESSION = pg(sql.INSERT_SESSION)
_LIVE_SESSION = pg(sql.LIVE_SESSION)
_END_SESSION = pg(sql.END_SESSION)


class PostgresAccess:
    """API keys and console sessions of `PostgresStore` (which provides `_session`)."""

    def _session(
        self, what: str
    ) -> contextlib.AbstractAsyncContextManager[psycopg.AsyncConnection]:
        raise NotImplementedError  # `PostgresRuns._session`

    async def create_api_key(self, key: ApiKey) -> None:
        async with self._session(f"create API key {key.id}") as conn:
            await conn.execute(_INSERT_KEY, key_values(key))

    async def get_api_key(self, key_id: str) -> ApiKey | None:
        async with self._session("read an API key") as conn:
            cur = await conn.execute(_KEY_BY_ID, (key_id,))
            row = await cur.fetchone()
        return key_from_row(row) if row else None

    async def list_api_keys(self, *, tenant: str | None = None) -> list[ApiKey]:
        async with self._session("list API keys") as conn:
            if tenant is None:
                cur = await conn.execute(_KEYS)
            else:
                cur = await conn.execute(_KEYS_OF_TENANT, (tenant,))
            rows = await cur.fetchall()
        return [key_from_row(row) for row in rows]

    async def runs_by_tenant(self) -> dict[str, int]:
        async with self._session("count runs by tenant") as conn:
            cur = await conn.execute(sql.RUNS_BY_TENANT)
            return {tenant: int(n) for tenant, n in await cur.fetchall()}

    async def revoke_api_key(self, key_id: str, *, now: float) -> bool:
        async with self._session(f"revoke API key {key_id}") as conn, conn.transaction():
            cur = await conn.execute(_REVOKE_KEY, (now, key_id))
            gone = await cur.fetchone()
            await conn.execute(_END_SESSIONS_OF_KEY, (key_id,))
        return gone is not None

    async def touch_api_key(self, key_id: str, *, now: float) -> None:
        async with self._session("record API key use") as conn:
            await conn.execute(_TOUCH_KEY, (now, key_id))

    async def create_console_session(self, session: ConsoleSession) -> None:
        async with self._session("create a console session") as conn:
            await conn.execute(_INSERT_SESSION, session_values(session))

    async def get_console_session(self, token_hash: str, *, now: float) -> ConsoleSession | None:
        async with self._session("read a console session") as conn:
            cur = await conn.execute(_LIVE_SESSION, (token_hash, now))
            row = await cur.fetchone()
        return session_from_row(row) if row else None

    async def delete_console_session(self, token_hash: str) -> None:
        async with self._session("end a console session") as conn:
            await conn.execute(_END_SESSION, (token_hash, time.time()))
