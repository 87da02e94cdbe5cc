"""The console's memory page: the tenant's facts (searched, or the newest), with their
provenance, and one scope at a time, e.g. a run tree's team scratchpad (`scope=team/<root
run id>`, linked from nowhere else yet). Read-only; forgetting is the CLI's and the API's."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from bosun.server import memory_ops
from bosun.server.console import State, User, page

router = APIRouter(include_in_schema=False)


@router.get("/memory", response_class=HTMLResponse)
async def memory_page(
    request: Request,
    p: User,
    state: State,
    q: str = Query("", max_length=1000),
    scope: str = Query("", max_length=300),
):
    facts = await memory_ops.search(state, p, q, scope or None, "hybrid", 50)
    return page(request, "memory.html", p, nav="memory", q=q, scope=scope, facts=facts)
