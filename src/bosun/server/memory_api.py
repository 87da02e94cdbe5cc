"""The HTTP API's memory routes: sessions (list, show, fork, clear) and long-term memory
(search, show, forget). Tenants and roles as everywhere (`bosun.server.memory_ops`)."""

from __future__ import annotations

from typing import Annotated, Any

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
