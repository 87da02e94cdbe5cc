"""Whether a caller's credentials still hold, for responses that outlive their request.

A request is authenticated once, when it arrives; a Server-Sent Event stream stays open for
hours. So every stream asks `alive(key_id, session)` between events. The answer comes from
the store at most once a second per key (and per console session), shared by every stream
of that key: a thousand open streams of one key cost one query a second, not a thousand.

A key revoked elsewhere (`bosun keys revoke`, another server on the same database) ends its
streams within a couple of seconds, at the streams' next check. A key revoked here
(`DELETE /api/keys/{id}`) or a console session logged out here ends them at once: the
streams wait on the event `watch` hands them, and `end_key` / `end_session` set it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator

from bosun.store.base import Store

CHECK_EVERY = 1.0  # seconds an answer from the store is reused


class Liveness:
    def __init__(self, store: Store, *, ttl: float = CHECK_EVERY):
        self.store = store
        self.ttl = ttl
        self._checked: dict[str, tuple[float, bool]] = {}  # name -> (monotonic time, alive)
        self._pending: dict[str, asyncio.Future[bool]] = {}  # one query in flight per name
        self._watchers: dict[str, set[asyncio.Event]] = {}

    @contextlib.contextmanager
    def watch(self, key_id: str, session: str | None = None) -> Iterator[asyncio.Event]:
        """An event set when the key (or the console session, by token hash) is ended in
        this process; the cached answers are kept only while someone watches."""
        ended = asyncio.Event()
        names = _names(key_id, session)
        for name in names:
            self._watchers.setdefault(name, set()).add(ended)
        try:
            yield ended
        finally:
            for name in names:
                watchers = self._watchers.get(name, set())
                watchers.discard(ended)
                if not watchers:
                    self._watchers.pop(name, None)
                    self._checked.pop(name, None)

    async def alive(self, key_id: str, session: str | None = None) -> bool:
        """The key is not revoked (and the session neither expired nor logged out)."""
        for name in _names(key_id, session):
            if not await self._alive(name):
                return False
        return True

    def end_key(self, key_id: str) -> None:
        """The key was revoked in this process: its streams end now."""
        self._end(f"key:{key_id}")

    def end_session(self, token_hash: str) -> None:
        """The console session was logged out in this process: its streams end now."""
        self._end(f"session:{token_hash}")

    def _end(self, name: str) -> None:
        watchers = self._watchers.get(name)
        if not watchers:
            return
        self._checked[name] = (time.monotonic(), False)
        for ended in watchers:
            ended.set()

    async def _alive(self, name: str) -> bool:
        checked = self._checked.get(name)
        if checked is not None and time.monotonic() - checked[0] < self.ttl:
            return checked[1]
        pending = self._pending.get(name)
        if pending is None:
            pending = asyncio.ensure_future(self._query(name))
            self._pending[name] = pending
            pending.add_done_callback(lambda _: self._pending.pop(name, None))
        # Shielded: a stream that goes away must not cancel the query others wait for.
        return await asyncio.shield(pending)

    async def _query(self, name: str) -> bool:
        kind, _, ident = name.partition(":")
        if kind == "key":
            key = await self.store.get_api_key(ident)
            alive = key is not None and key.revoked_at is None
        else:
            alive = await self.store.get_console_session(ident, now=time.time()) is not None
        if name in self._watchers:
            self._checked[name] = (time.monotonic(), alive)
        return alive


def _names(key_id: str, session: str | None) -> tuple[str, ...]:
    return (f"key:{key_id}",) if session is None else (f"key:{key_id}", f"session:{session}")
