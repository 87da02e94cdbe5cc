"""Access on SQLite: API keys and web console sessions (the statements are `bosun.store.sql`'s)."""

from __future__ import annotations

import sqlite3
import time

from bosun.store import sql
from bosun.store.records import ApiKey, ConsoleSession
from bosun.store.rows import key_from_row, key_values, session_from_row, session_values


class SqliteAccess:
    """API keys and console sessions of `SqliteStore` (which provides `conn`)."""

    conn: sqlite3.Connection

    async def create_api_key(self, key: ApiKey) -> None:
        self.conn.execute(sql.INSERT_KEY, key_values(key))

    async def get_api_key(self, key_id: str) -> ApiKey | None:
        row = self.conn.execute(sql.KEY_BY_ID, (key_id,)).fetchone()
        return key_from_row(row) if row else None

    async def list_api_keys(self, *, tenant: str | None = None) -> list[ApiKey]:
        if tenant is None:
            rows = self.conn.execute(sql.KEYS + sql.KEYS_ORDER).fetchall()
        else:
            rows = self.conn.execute(sql.KEYS_OF_TENANT + sql.KEYS_ORDER, (tenant,)).fetchall()
        return [key_from_row(row) for row in rows]

    async def runs_by_tenant(self) -> dict[str, int]:
        return {tenant: n for tenant, n in self.conn.execute(sql.RUNS_BY_TENANT)}

    async def revoke_api_key(self, key_id: str, *, now: float) -> bool:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            gone = conn.execute(sql.REVOKE_KEY, (now, key_id)).fetchone()
            conn.execute(sql.END_SESSIONS_OF_KEY, (key_id,))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return gone is not None

    async def touch_api_key(self, key_id: str, *, now: float) -> None:
        self.conn.execute(sql.TOUCH_KEY, (now, key_id))

    async def create_console_session(self, session: ConsoleSession) -> None:
        self.conn.execute(sql.INSERT_SESSION, session_values(session))

    async def get_console_session(self, token_hash: str, *, now: float) -> ConsoleSession | None:
        row = self.conn.execute(sql.LIVE_SESSION, (token_hash, now)).fetchone()
        return session_from_row(row) if row else None

    async def delete_console_session(self, token_hash: str) -> None:
        self.conn.execute(sql.END_SESSION, (token_hash, time.time()))
