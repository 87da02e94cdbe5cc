"""Memory for the edges, with the tenant rules of `bosun.server.ops`: a session or fact of
another tenant does not exist for the caller (404), and forks, clears and forgets are
audited with who did them."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from fastapi import HTTPException

from bosun.journal.audit import AuditEntry
from bosun.memory import sessions
from bosun.observe.sessions import shown_turns
from bosun.server.keys import Principal
from bosun.server.ops import actor
from bosun.server.state import ServerState


async def _audit(state: ServerState, p: Principal, action: str, subject: str, **data: Any) -> None:
    entry = AuditEntry(time.time(), actor(p), action, subject, data, p.tenant)
    await state.runtime.store.append_audit([entry])


async def list_sessions(state: ServerState, p: Principal, limit: int) -> list[dict[str, Any]]:
    found = await sessions.sessions(state.runtime.store, p.tenant, limit=limit)
    return [dataclasses.asdict(s) for s in found]


async def show_session(state: ServerState, p: Principal, name: str) -> dict[str, Any]:
    store = state.runtime.store
    if not await sessions.exists(store, p.tenant, name):
        raise HTTPException(404, f"no session {name!r} in tenant {p.tenant}")
    turns = await shown_turns(store, await sessions.turns(store, p.tenant, name, time.time() + 1))
    return {"name": name, "turns": [dataclasses.asdict(t) for t in turns]}


async def fork_session(state: ServerState, p: Principal, name: str, into: str) -> dict[str, Any]:
    store = state.runtime.store
    if not await sessions.exists(store, p.tenant, name):
        raise HTTPException(404, f"no session {name!r} in tenant {p.tenant}")
    if await sessions.exists(store, p.tenant, into):
        raise HTTPException(409, f"session {into!r} already exists: fork into a new name")
    at = await sessions.fork(store, p.tenant, name, into, actor=actor(p))
    await _audit(state, p, "session_forked", into, source=name)
    return {"name": into, "forked_from": name, "at": at}


async def clear_session(state: ServerState, p: Principal, name: str) -> dict[str, Any]:
    store = state.runtime.store
    if not await sessions.exists(store, p.tenant, name):
        raise HTTPException(404, f"no session {name!r} in tenant {p.tenant}")
    at = await sessions.clear(store, p.tenant, name, actor=actor(p))
    await _audit(state, p, "session_cleared", name)
    return {"name": name, "cleared_at": at}
