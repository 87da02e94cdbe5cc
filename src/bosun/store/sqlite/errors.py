"""SQLite's errors as the store's: `StoreUnavailable` when the database is at fault and the
same call can succeed later (a full disk, a lock held past `busy_timeout`, an I/O error),
`StoreError` otherwise. Callers (workers, the API) then handle one kind of error, whichever
store they use.
"""

from __future__ import annotations

import functools
import inspect
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from bosun.errors import StoreError, StoreUnavailable
from bosun.store.health import StoreHealth

# Failures that are the database's state, not the request's: they pass (space is freed, the
# lock is released, the disk comes back) and the same call then succeeds.
TRANSIENT = frozenset(
    {
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_NOMEM,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_PROTOCOL,
    }
)
# Converted by the group-commit writer itself (or, for open, with their own message).
_OWN_ERRORS = frozenset({"append", "create_run", "open", "close"})


class _Store(Protocol):
    path: str
    health: StoreHealth


def transient(exc: BaseException) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in TRANSIENT  # extended codes keep the primary


def store_error(store: _Store, what: str, exc: BaseException) -> StoreError:
    """`exc` as the error callers see; a transient one is recorded in the store's health."""
    message = f"could not {what} in SQLite database {store.path}: {exc}"
    if transient(exc):
        store.health.failed(message)
        return StoreUnavailable(message)
    return StoreError(message)


def raising_store_errors(cls: type) -> type:
    """Wrap the public coroutine methods of `cls` (a store class) so sqlite3 errors leave
    them as `StoreError`; the writer's own methods convert their errors themselves."""
    for name in dir(cls):
        if name.startswith("_") or name in _OWN_ERRORS:
            continue
        fn = inspect.getattr_static(cls, name)
        if inspect.iscoroutinefunction(fn):
            setattr(cls, name, _converting(fn))
    return cls


def _converting(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    what = fn.__name__.replace("_", " ")

    @functools.wraps(fn)
    async def call(self: _Store, *args: Any, **kwargs: Any) -> Any:
        try:
            return await fn(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise store_error(self, what, exc) from exc

    return call
