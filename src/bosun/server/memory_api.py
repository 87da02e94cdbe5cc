"""The HTTP API's memory routes: sessions (list, show, fork, clear) and long-term memory
(search, show, forget). Tenants and roles as everywhere (`bosun.server.memory_ops`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query

from bosun.server import memory_ops, schemas
from bosun.server.auth import require
from bosun.server.keys import Principal
from bosun.server.state import ServerState, state_of

router = APIRouter(prefix="/api", responses=schemas.errors(*schemas.COMMON_ERRORS))
Reader = Annotated[Principal, Depends(require("read"))]
Operator = Annotated[Principal, Depends(require("operate"))]
State = Annotated[ServerState, Depends(state_of)]
NOT_FOUND = schemas.errors(404)
Name = Annotated[str, Query(max_length=200)]


@router.get("/sessions", tags=["memory"])
async def list_sessions(
    p: Reader, state: State, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[dict[str, Any]]:
    """The tenant's sessions, the most recently active first."""
    return await memory_ops.list_sessions(state, p, limit)


@router.get("/sessions/{name}", tags=["memory"], responses=NOT_FOUND)
async def show_session(name: str, p: Reader, state: State) -> dict[str, Any]:
    """The conversation the session's next run continues (redacted per run)."""
    return await memory_ops.show_session(state, p, name)


@router.post("/sessions/{name}/fork", tags=["memory"], responses=schemas.errors(404, 409))
async def fork_session(
    name: str, p: Operator, state: State, into: Annotated[str, Body(embed=True, max_length=200)]
) -> dict[str, Any]:
    """A new session `into` that starts with this one's conversation as of now."""
    return await memory_ops.fork_session(state, p, name, into)


@router.post("/sessions/{name}/clear", tags=["memory"], responses=NOT_FOUND)
async def clear_session(name: str, p: Operator, state: State) -> dict[str, Any]:
    """Later runs of the session start afresh (the earlier runs stay, for the audit)."""
    return await memory_ops.clear_session(state, p, name)


# -- long-term memory ----------------------------------------------------------------


@router.get("/memory", tags=["memory"])
async def search_memory(
    p: Reader,
    state: State,
    q: Annotated[str, Query(max_length=1000, description="what to recall (none: the newest)")] = "",
    scope: Annotated[str | None, Query(max_length=300, description="e.g. user/ada")] = None,
    mode: Literal["lexical", "vector", "hybrid"] = "hybrid",
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> list[dict[str, Any]]:
    """The tenant's current facts that match `q` (each with its provenance, its score
    explained and the values that disagree with it), or without `q` the newest ones."""
    return await memory_ops.search(state, p, q, scope, mode, limit)


@router.get("/memory/{memory_id}", tags=["memory"], responses=NOT_FOUND)
async def show_memory(memory_id: str, p: Reader, state: State) -> dict[str, Any]:
    """One fact and every value its key has had."""
    return await memory_ops.show(state, p, memory_id)


@router.delete("/memory/{memory_id}", tags=["memory"], responses=NOT_FOUND)
async def forget_memory(
    memory_id: str,
    p: Operator,
    state: State,
    reason: Annotated[str, Query(max_length=500)] = "",
) -> dict[str, Any]:
    """Forget a fact for good (its index rows and embeddings too); audited."""
    return await memory_ops.forget(state, p, memory_id, reason)
