"""Memory for the edges, with the tenant rules of `bosun.server.ops`: a session or fact of
another tenant does not exist for the caller (404), and forks, clears and forgets are
audited with who did them."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from fastapi import HTTPException

from bosun.errors import BosunError, FactNotFound
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
    try:
        at = await sessions.fork(store, p.tenant, name, into, actor=actor(p))
    except BosunError as exc:  # the new name is not usable
        raise HTTPException(422, str(exc)) from None
    await _audit(state, p, "session_forked", into, source=name)
    return {"name": into, "forked_from": name, "at": at}


async def clear_session(state: ServerState, p: Principal, name: str) -> dict[str, Any]:
    store = state.runtime.store
    if not await sessions.exists(store, p.tenant, name):
        raise HTTPException(404, f"no session {name!r} in tenant {p.tenant}")
    at = await sessions.clear(store, p.tenant, name, actor=actor(p))
    await _audit(state, p, "session_cleared", name)
    return {"name": name, "cleared_at": at}


# -- long-term memory ------------------------------------------------------------------


def _scopes(scope: str | None) -> list[tuple[str, str]] | None:
    if not scope:
        return None
    kind, _, ident = scope.partition("/")
    return [(kind, ident or "-")]


async def search(
    state: ServerState, p: Principal, q: str, scope: str | None, mode: Any, limit: int
) -> list[dict[str, Any]]:
    if not q.strip():
        scoped = _scopes(scope)
        facts = await state.runtime.memory.facts.listing(
            p.tenant, scoped[0] if scoped else None, limit=limit
        )
        return [f.shown() for f in facts]
    found = await state.runtime.memory.recall.search(
        tenant=p.tenant, scopes=_scopes(scope), query=q, limit=limit, mode=mode
    )
    return [r.shown() for r in found]


async def show(state: ServerState, p: Principal, memory_id: str) -> dict[str, Any]:
    facts = state.runtime.memory.facts
    try:
        fact = await facts.get(p.tenant, memory_id)
    except FactNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    return {**fact.shown(), "history": [f.shown() for f in await facts.history(p.tenant, fact)]}


async def forget(state: ServerState, p: Principal, memory_id: str, reason: str) -> dict[str, Any]:
    try:
        fact = await state.runtime.memory.forget(p.tenant, memory_id, actor=actor(p), reason=reason)
    except FactNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    return {"forgotten": fact.id}
