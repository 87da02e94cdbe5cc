"""Triggers on the HTTP edge: signed webhooks (`POST /hooks/{name}`, public: the signature
is the authentication), the triggers' API (`/api/triggers`: list, pause, resume) and the
console's Triggers page (`/triggers`), all showing `bosun.triggers.status.listing`.

A refused signature answers 401 through the same counter and audit trail as a bad API key
(`auth.count_failure`: audited `auth_failed` with the reason, rate-limited per address),
so forging hooks gets a sender no more guesses than forging keys.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse

from bosun.errors import BosunError, InputMappingFailed, Replayed
from bosun.server import console, schemas
from bosun.server.auth import client_ip, count_failure, require
from bosun.server.keys import Principal
from bosun.server.state import ServerState, state_of
from bosun.triggers import status as trigger_status
from bosun.triggers.fire import count
from bosun.triggers.webhook import Refused, receive

hooks = APIRouter(tags=["triggers"])
api = APIRouter(prefix="/api", tags=["triggers"], responses=schemas.errors(*schemas.COMMON_ERRORS))
State = Annotated[ServerState, Depends(state_of)]
Reader = Annotated[Principal, Depends(require("read"))]
Operator = Annotated[Principal, Depends(require("operate"))]


@hooks.post(
    "/hooks/{name}",
    status_code=202,
    responses=schemas.errors(400, 401, 404, 409, 413, 422, 429, 503),
)
async def webhook(name: str, request: Request, state: State) -> JSONResponse:
    """Start the hook's run for one signed delivery: `202 {"run_id"}` once the run is
    durably created; the same `X-Bosun-Delivery` again returns that run (`deduplicated`)."""
    triggers = state.triggers
    trigger = triggers.webhook(name) if triggers is not None else None
    if trigger is None:
        raise HTTPException(404, f"no webhook {name!r} is served here")
    body = await request.body()
    try:
        fired = await receive(state.runtime, trigger, request.headers, body)
    except Refused as refused:
        if refused.authentication:
            raise await count_failure(
                state, client_ip(request), request.url.path, "POST", f"webhook: {refused.reason}"
            ) from None
        headers = {"Retry-After": "5"} if refused.status == 503 else None
        return JSONResponse({"detail": refused.reason}, refused.status, headers=headers)
    except Replayed as exc:
        return JSONResponse({"detail": str(exc)}, 409)
    except InputMappingFailed as exc:
        await count(state.runtime, trigger, "rejected")
        return JSONResponse({"detail": str(exc)}, 422)
    return JSONResponse(
        {"run_id": fired.run_id, "deduplicated": not fired.started, "trigger": name}, 202
    )


@api.get("/triggers")
async def list_triggers(p: Reader, state: State) -> list[dict[str, Any]]:
    """The caller's tenant's triggers with their counters (received, started,
    deduplicated, rejected, dead_lettered) and whether each is paused."""
    file = state.triggers.file if state.triggers is not None else None
    return await trigger_status.listing(state.runtime.store, file, tenant=p.tenant)


async def set_paused(state: ServerState, p: Principal, name: str, paused: bool) -> dict[str, Any]:
    """Pause or resume one of the caller's tenant's triggers (another tenant's is a 404)."""
    file = state.triggers.file if state.triggers is not None else None
    shown = await trigger_status.listing(state.runtime.store, file, tenant=p.tenant)
    if not any(t["name"] == name for t in shown):
        raise HTTPException(404, f"no trigger {name!r}")
    store = state.runtime.store
    await store.ensure_trigger(name, p.tenant)
    if not await store.set_trigger_paused(name, paused):
        raise BosunError(f"trigger {name!r} could not be changed")
    return {"name": name, "paused": paused}


@api.post("/triggers/{name}/pause", responses=schemas.errors(404))
async def pause_trigger(name: str, p: Operator, state: State) -> dict[str, Any]:
    """Stop the trigger starting runs (webhooks answer 503, queues stop pulling, schedules
    pass their ticks) in every process serving it."""
    return await set_paused(state, p, name, True)


@api.post("/triggers/{name}/resume", responses=schemas.errors(404))
async def resume_trigger(name: str, p: Operator, state: State) -> dict[str, Any]:
    return await set_paused(state, p, name, False)


# -- the console's Triggers page ----------------------------------------------------------

pages = APIRouter(include_in_schema=False)


@pages.get("/triggers", response_class=HTMLResponse)
async def triggers_page(request: Request, p: console.User, state: State):
    file = state.triggers.file if state.triggers is not None else None
    shown = await trigger_status.listing(state.runtime.store, file, tenant=p.tenant)
    return console.page(request, "triggers.html", p, nav="triggers", triggers=shown)


@pages.post("/triggers/{name}/{action}")
async def triggers_toggle(request: Request, name: str, action: str, p: console.User, state: State):
    if action not in ("pause", "resume"):
        raise HTTPException(404, "no such action")
    try:
        if not p.can("operate"):
            raise BosunError(f"the {p.role} role cannot pause triggers: it needs operator")
        await set_paused(state, p, name, action == "pause")
    except (HTTPException, BosunError) as exc:
        detail = exc.detail if isinstance(exc, HTTPException) else str(exc)
        return console.back(request, "/triggers", err=str(detail))
    verb = "paused: it starts no runs" if action == "pause" else "resumed"
    return console.back(request, "/triggers", msg=f"Trigger {name} {verb}.")
