"""PostgreSQL store, control-plane half: API keys and web console sessions (`bosun serve`)."""

from __future__ import annotations

import contextlib
import time

import psycopg

from bosun.store.base import ApiKey, ConsoleSession
from bosun.store.rows import KEY_COLUMNS, key_from_row, key_values

SERVER_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS api_keys (
        id TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        role TEXT NOT NULL,
        name TEXT NOT NULL,
        hash TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        revoked_at DOUBLE PRECISION,
        last_used_at DOUBLE PRECISION
    )""",
    "ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS approves TEXT NOT NULL DEFAULT ''",
    """CREATE TABLE IF NOT EXISTS console_sessions (
        token_hash TEXT PRIMARY KEY,
        key_id TEXT NOT NULL,
        csrf TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        expires_at DOUBLE PRECISION NOT NULL
    )""",
]

_SESSION_COLUMNS = "token_hash, key_id, csrf, created_at, expires_at"


class PostgresAccess:
    """API keys and console sessions of `PostgresStore` (which provides `_session`)."""

    def _session(
        self, what: str
    ) -> contextlib.AbstractAsyncContextManager[psycopg.AsyncConnection]:
        raise NotImplementedError

    async def create_api_key(self, key: ApiKey) -> None:
        async with self._session(f"create API key {key.id}") as conn:
            await conn.execute(
                f"INSERT INTO api_keys({KEY_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                key_values(key),
            )

    async def get_api_key(self, key_id: str) -> ApiKey | None:
        async with self._session("read an API key") as conn:
            cur = await conn.execute(f"SELECT {KEY_COLUMNS} FROM api_keys WHERE id=%s", (key_id,))
            row = await cur.fetchone()
        return key_from_row(row) if row else None

    async def list_api_keys(self, *, tenant: str | None = None) -> list[ApiKey]:
        sql, params = f"SELECT {KEY_COLUMNS} FROM api_keys", []
        if tenant is not None:
            sql += " WHERE tenant=%s"
            params.append(tenant)
        async with self._session("list API keys") as conn:
            cur = await conn.execute(sql + " ORDER BY created_at, id", params)
            rows = await cur.fetchall()
        return [key_from_row(row) for row in rows]

    async def runs_by_tenant(self) -> dict[str, int]:
        async with self._session("count runs by tenant") as conn:
            cur = await conn.execute("SELECT tenant, count(*) FROM runs GROUP BY tenant")
            return {tenant: int(n) for tenant, n in await cur.fetchall()}

    async def revoke_api_key(self, key_id: str, *, now: float) -> bool:
        async with self._session(f"revoke API key {key_id}") as conn, conn.transaction():
            cur = await conn.execute(
                "UPDATE api_keys SET revoked_at=%s WHERE id=%s AND revoked_at IS NULL RETURNING id",
                (now, key_id),
            )
            gone = await cur.fetchone()
            await conn.execute("DELETE FROM console_sessions WHERE key_id=%s", (key_id,))
        return gone is not None

    async def touch_api_key(self, key_id: str, *, now: float) -> None:
        async with self._session("record API key use") as conn:
            await conn.execute("UPDATE api_keys SET last_used_at=%s WHERE id=%s", (now, key_id))

    async def create_console_session(self, session: ConsoleSession) -> None:
        async with self._session("create a console session") as conn:
            await conn.execute(
                f"INSERT INTO console_sessions({_SESSION_COLUMNS}) VALUES (%s, %s, %s, %s, %s)",
                (
                    session.token_hash,
                    session.key_id,
                    session.csrf,
                    session.created_at,
                    session.expires_at,
                ),
            )

    async def get_console_session(self, token_hash: str, *, now: float) -> ConsoleSession | None:
        async with self._session("read a console session") as conn:
            cur = await conn.execute(
                f"SELECT {_SESSION_COLUMNS} FROM console_sessions"
                " WHERE token_hash=%s AND expires_at>%s",
                (token_hash, now),
            )
            row = await cur.fetchone()
        return ConsoleSession(*row) if row else None

    async def delete_console_session(self, token_hash: str) -> None:
        async with self._session("end a console session") as conn:
            await conn.execute(
                "DELETE FROM console_sessions WHERE token_hash=%s OR expires_at<%s",
                (token_hash, time.time()),
            )
