"""Access on SQLite: API keys and web console sessions."""

from __future__ import annotations

import logging
import time

from bosun.store.base import (
    ApiKey,
    ConsoleSession,
)
from bosun.store.rows import (
    KEY_COLUMNS,
    key_from_row,
    key_values,
)

log = logging.getLogger("bosun.store")


class SqliteAccess:
    """API keys and console sessions."""

    # -- control plane: API keys and console sessions -----------------------

    async def create_api_key(self, key: ApiKey) -> None:
        self.conn.execute(
            f"INSERT INTO api_keys({KEY_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)",
            key_values(key),
        )

    async def get_api_key(self, key_id: str) -> ApiKey | None:
        row = self.conn.execute(
            f"SELECT {KEY_COLUMNS} FROM api_keys WHERE id=?", (key_id,)
        ).fetchone()
        return key_from_row(row) if row else None

    async def list_api_keys(self, *, tenant: str | None = None) -> list[ApiKey]:
        sql, params = f"SELECT {KEY_COLUMNS} FROM api_keys", []
        if tenant is not None:
            sql += " WHERE tenant=?"
            params.append(tenant)
        rows = self.conn.execute(sql + " ORDER BY created_at, id", params).fetchall()
        return [key_from_row(row) for row in rows]

    async def runs_by_tenant(self) -> dict[str, int]:
        rows = self.conn.execute("SELECT tenant, count(*) FROM runs GROUP BY tenant")
        return {tenant: n for tenant, n in rows}

    async def revoke_api_key(self, key_id: str, *, now: float) -> bool:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            gone = conn.execute(
                "UPDATE api_keys SET revoked_at=? WHERE id=? AND revoked_at IS NULL RETURNING id",
                (now, key_id),
            ).fetchone()
            conn.execute("DELETE FROM console_sessions WHERE key_id=?", (key_id,))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return gone is not None

    async def touch_api_key(self, key_id: str, *, now: float) -> None:
        self.conn.execute("UPDATE api_keys SET last_used_at=? WHERE id=?", (now, key_id))

    async def create_console_session(self, session: ConsoleSession) -> None:
        self.conn.execute(
            "INSERT INTO console_sessions(token_hash, key_id, csrf, created_at, expires_at)"
            " VALUES (?,?,?,?,?)",
            (
                session.token_hash,
                session.key_id,
                session.csrf,
                session.created_at,
                session.expires_at,
            ),
        )

    async def get_console_session(self, token_hash: str, *, now: float) -> ConsoleSession | None:
        row = self.conn.execute(
            "SELECT token_hash, key_id, csrf, created_at, expires_at FROM console_sessions"
            " WHERE token_hash=? AND expires_at>?",
            (token_hash, now),
        ).fetchone()
        return ConsoleSession(*row) if row else None

    async def delete_console_session(self, token_hash: str) -> None:
        self.conn.execute(
            "DELETE FROM console_sessions WHERE token_hash=? OR expires_at<?",
            (token_hash, time.time()),
        )
