"""The memory layer's statements on either backend's connection, written once.

SQLite statements run on the store's own connection, synchronously on the event loop's
thread like the store's (a transaction never spans an `await`, so the journal's group
commit never interleaves with one); PostgreSQL ones in the store's session, one
transaction per call. Statements use `?` placeholders (`bosun.store.sql.pg` converts).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from bosun.errors import StoreError
from bosun.store.base import Store
from bosun.store.sql import pg
from bosun.store.sqlite import SqliteStore

Statement = tuple[str, Sequence[Any]]


class Db:
    """Run statements for the memory layer on `store`'s connection."""

    def __init__(self, store: Store):
        self.store = store
        self.dialect = "sqlite" if isinstance(store, SqliteStore) else "postgres"

    async def rows(self, statement: str, params: Sequence[Any] = (), *, what: str) -> list[Any]:
        """The rows of one read."""
        return (await self.run([(statement, params)], what=what))[0]

    async def run(self, statements: Sequence[Statement], *, what: str) -> list[list[Any]]:
        """Each statement's rows, all in one transaction (all or nothing)."""
        if self.dialect == "sqlite":
            return self._sqlite(statements, what)
        out: list[list[Any]] = []
        async with self.store._session(what) as conn, conn.transaction():  # type: ignore[attr-defined]
            for statement, params in statements:
                cur = await conn.execute(pg(statement), tuple(params))
                out.append(list(await cur.fetchall()) if cur.description else [])
        return out

    def _sqlite(self, statements: Sequence[Statement], what: str) -> list[list[Any]]:
        conn: sqlite3.Connection = self.store.conn  # type: ignore[attr-defined]
        out: list[list[Any]] = []
        try:
            if len(statements) == 1:
                statement, params = statements[0]
                return [conn.execute(statement, tuple(params)).fetchall()]
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement, params in statements:
                    out.append(conn.execute(statement, tuple(params)).fetchall())
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StoreError(f"could not {what}: {exc}") from exc
        return out
