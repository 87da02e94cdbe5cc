"""The HTTP API under /api. Every route needs a key (see `bosun.server.auth`); what it may
see and do is decided in `bosun.server.ops`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Body, Depends, Header, Query, Request
from fastapi.responses import Response, StreamingResponse

from bosun.journal.redact import Redactor
from bosun.observe.usage import UsageBy
from bosun.server import ops, schemas
from bosun.server.auth import Caller, caller_of, require
from bosun.server.keys import Principal
from bosun.server.state import ServerState, state_of
from bosun.server.usage import usage
from bosun.spec.vocab import ApprovalStatus
from bosun.store.base import TERMINAL_STATUSES

router = APIRouter(prefix="/api", responses=schemas.errors(*schemas.COMMON_ERRORS))
# Routes that name one object answer 404 for one that is not the caller's tenant's.
NOT_FOUND = schemas.errors(404)
CONFLICT = schemas.errors(404, 409)

Reader = Annotated[Principal, Depends(require("read"))]
Operator = Annotated[Principal, Depends(require("operate"))]
Approver = Annotated[Principal, Depends(require("approve"))]
Admin = Annotated[Principal, Depends(require("admin"))]
Platform = Annotated[Principal, Depends(require("platform"))]
State = Annotated[ServerState, Depends(state_of)]

_POLL = 2.0  # seconds: re-read the store even without a wake-up (other processes' runs)
_KEEPALIVE = 15.0
_SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}

# -- runs ---------------------------------------------------------------------------


@router.post("/runs", status_code=201, response_model=schemas.Submitted, tags=["runs"])
async def submit_run(
    body: schemas.SubmitRun,
    p: Operator,
    state: State,
    idempotency_key: Annotated[
        str | None,
        Header(
            max_length=200,
            description="the same key (per tenant) returns the same run, never a second one",
        ),
    ] = None,
) -> schemas.Submitted:
    """Queue a run of a served agent for the caller's tenant; a worker picks it up at once."""
    return await ops.submit(state, p, body, key=idempotency_key)


@router.get("/runs", response_model=schemas.RunPage, tags=["runs"])
async def list_runs(
    p: Reader,
    state: State,
    agent: Annotated[str | None, Query(max_length=200)] = None,
    status: schemas.RunStatus | None = None,
    tag: Annotated[str | None, Query(max_length=400, description="key=value")] = None,
    user: Annotated[str | None, Query(max_length=200)] = None,
    since: Annotated[float | None, Query(description="created at or after (epoch s)")] = None,
    until: Annotated[float | None, Query(description="created before (epoch s)")] = None,
    limit: Annotated[int, Query(ge=1, le=ops.MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    parent_id: Annotated[str | None, Query(max_length=200, description="its children")] = None,
    root_id: Annotated[str | None, Query(max_length=200, description="a whole run tree")] = None,
) -> schemas.RunPage:
    """The caller's tenant's runs, newest first, filtered and paginated."""
    return await ops.list_runs(
        state,
        p,
        agent=agent,
        status=status,
        tag=ops.parse_tag(tag),
        user=user,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
        parent_id=parent_id,
        root_id=root_id,
    )


@router.get("/runs/{run_id}", response_model=schemas.Run, responses=NOT_FOUND, tags=["runs"])
async def get_run(run_id: str, p: Reader, state: State) -> schemas.Run:
    """The run (its texts redacted like its journal: a secret it handled is masked)."""
    return schemas.Run.of(await ops.shown_run(state, p, run_id))


@router.get(
    "/runs/{run_id}/events",
    response_model=list[schemas.EventOut],
    responses=NOT_FOUND,
    tags=["runs"],
)
async def run_events(
    run_id: str,
    p: Reader,
    state: State,
    after: Annotated[int, Query(ge=0, le=2**31)] = 0,
) -> list[dict]:
    """The run's journal (sensitive fields redacted), events after seq `after`."""
    _, items = await ops.events(state, p, run_id, after)
    return ops.event_dicts(items)


@router.get(
    "/runs/{run_id}/calls",
    response_model=list[schemas.CallOut],
    responses=NOT_FOUND,
    tags=["runs"],
)
async def run_calls(run_id: str, p: Reader, state: State) -> list[dict]:
    """The run's tool calls in the order proposed, each with its policy decision,
    approval, attempts and result or error (redacted like the journal)."""
    return await ops.calls(state, p, run_id)


@router.get(
    "/runs/{run_id}/calls/{call_id}/result",
    response_class=Response,
    responses={**NOT_FOUND, 200: {"content": {"application/octet-stream": {}}}},
    tags=["runs"],
)
async def call_result(run_id: str, call_id: str, p: Reader, state: State) -> Response:
    """One call's whole result: the artifact kept when the model saw an excerpt of it (a
    long MCP answer), else the journaled result as JSON. Served as a download."""
    mime, data = await ops.call_result(state, p, run_id, call_id)
    return _bytes(data, mime, download=f"{call_id}.result")


@router.get(
    "/runs/{run_id}/artifacts/{digest}",
    response_class=Response,
    responses={**NOT_FOUND, 200: {"content": {"application/octet-stream": {}}}},
    tags=["runs"],
)
async def run_artifact(run_id: str, digest: str, p: Reader, state: State) -> Response:
    """An artifact the run's journal references (an attached image, a tool's picture):
    images and audio inline (the console shows them), anything else as a download."""
    mime, data = await ops.run_artifact(state, p, run_id, digest)
    inline = mime.split("/")[0] in ("image", "audio") and "svg" not in mime
    return _bytes(data, mime, download=None if inline else digest.replace(":", "-"))


def _bytes(data: bytes, mime: str, *, download: str | None) -> Response:
    headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=3600"}
    if download is not None:
        headers["Content-Disposition"] = f'attachment; filename="{download}"'
    return Response(data, media_type=mime, headers=headers)


@router.get(
    "/runs/{run_id}/stream",
    tags=["runs"],
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "event stream"},
        **NOT_FOUND,
    },
)
async def stream_run(
    run_id: str,
    request: Request,
    p: Reader,
    state: State,
    after: Annotated[int, Query(ge=0, le=2**31)] = 0,
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
) -> StreamingResponse:
    """Server-Sent Events: one `event: <kind>` per journal event (id = seq), live, then
    `event: end` once the run has finished. Reconnects resume after `Last-Event-ID`. The
    stream ends within seconds of its key being revoked (or its console session ending)."""
    await ops.get_run(state, p, run_id)  # 404 before the stream starts
    if last_event_id and last_event_id.isdigit():
        after = int(last_event_id)
    return StreamingResponse(
        _run_stream(state, _caller(request, p), run_id, after, request),
        media_type="text/event-stream",
        headers=_SSE_HEADERS,
    )


def _caller(request: Request, p: Principal) -> Caller:
    return caller_of(request) or Caller(p)


async def _run_stream(
    state: ServerState, caller: Caller, run_id: str, after: int, request: Request
) -> AsyncIterator[bytes]:
    p = caller.principal
    # One per stream: it remembers what it masked in earlier events, which are not read again.
    redactor = Redactor.for_run((await ops.get_run(state, p, run_id)).spec)
    sub = state.hub.subscribe(p.tenant, run_id)
    quiet = 0.0
    try:
        with _watch(state, caller) as ended:
            yield b"retry: 2000\n\n"
            while await _still_on(state, caller, ended):
                run, items = await ops.events(state, p, run_id, after, redactor)
                for item in ops.event_dicts(items):
                    yield _sse(item["kind"], item, item["seq"])
                    after = item["seq"]
                if run.status in TERMINAL_STATUSES and run.last_seq <= after:
                    yield _sse("end", {"run_id": run_id, "status": run.status})
                    return
                if await request.is_disconnected():
                    return
                changed = await _wait(sub, state, ended)
                quiet = 0.0 if changed else quiet + _POLL
                if quiet >= _KEEPALIVE:
                    quiet = 0.0
                    yield b": keepalive\n\n"
    finally:
        state.hub.unsubscribe(sub)


@router.get(
    "/stream",
    tags=["runs"],
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "event stream"}},
)
async def stream_changes(request: Request, p: Reader, state: State) -> StreamingResponse:
    """Server-Sent Events: `event: change` whenever any run, approval or kill switch of the
    caller's tenant changes (at most a few a second), and `event: tick` every few seconds.
    The stream ends within seconds of its key being revoked (or its console session ending)."""
    return StreamingResponse(
        _change_stream(state, _caller(request, p), request),
        media_type="text/event-stream",
        headers=_SSE_HEADERS,
    )


async def _change_stream(
    state: ServerState, caller: Caller, request: Request
) -> AsyncIterator[bytes]:
    sub = state.hub.subscribe(caller.principal.tenant)
    try:
        with _watch(state, caller) as ended:
            yield b"retry: 2000\n\n"
            while await _still_on(state, caller, ended):
                changed = await _wait(sub, state, ended)
                if ended.is_set() or await request.is_disconnected():
                    return
                yield _sse("change" if changed else "tick", {"ts": time.time()})
                if changed:
                    await asyncio.sleep(0.25)  # coalesce bursts: a run commits many times a second
    finally:
        state.hub.unsubscribe(sub)


def _watch(state: ServerState, caller: Caller):
    session = caller.session.token_hash if caller.session else None
    return state.liveness.watch(caller.principal.key_id, session)


async def _still_on(state: ServerState, caller: Caller, ended: asyncio.Event) -> bool:
    """Go on streaming: the server is not stopping, and the caller's key (and console
    session) still hold, as the store said at most a second ago (`bosun.server.liveness`)."""
    if state.stop.is_set() or ended.is_set():
        return False
    session = caller.session.token_hash if caller.session else None
    return await state.liveness.alive(caller.principal.key_id, session)


async def _wait(sub, state: ServerState, ended: asyncio.Event) -> bool:
    """Until something of the stream changed (True), `_POLL` seconds passed (False), or the
    stream must end (the server stops, the key is revoked here: False)."""
    stops = [asyncio.ensure_future(state.stop.wait()), asyncio.ensure_future(ended.wait())]
    changed = asyncio.ensure_future(sub.wait(_POLL))
    try:
        done, _ = await asyncio.wait({*stops, changed}, return_when=asyncio.FIRST_COMPLETED)
        return changed in done and changed.result()
    finally:
        for future in (*stops, changed):
            future.cancel()


def _sse(event: str, data: object, event_id: int | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: ".encode() + orjson.dumps(data) + b"\n\n"


@router.post(
    "/runs/{run_id}/cancel", response_model=schemas.Cancelled, responses=NOT_FOUND, tags=["runs"]
)
async def cancel_run(run_id: str, p: Operator, state: State) -> schemas.Cancelled:
    """Stop the run at its next step boundary."""
    return await ops.cancel(state, p, run_id)


@router.get(
    "/runs/{run_id}/push-deliveries",
    response_model=list[schemas.PushDelivery],
    responses=NOT_FOUND,
    tags=["runs"],
)
async def push_deliveries(run_id: str, p: Reader, state: State) -> list[schemas.PushDelivery]:
    """The A2A push notifications of the run's task (docs/a2a.md, "Push notifications"):
    what each webhook was sent, how many tries it took, and the last error."""
    await ops.get_run(state, p, run_id)
    rows = await state.runtime.store.push_deliveries(p.tenant, run_id)
    return [schemas.PushDelivery.model_validate(d, from_attributes=True) for d in rows]


@router.post(
    "/runs/{run_id}/signals/{name}",
    response_model=schemas.Signalled,
    responses=CONFLICT,
    tags=["runs"],
)
async def signal_run(
    run_id: str,
    name: str,
    p: Operator,
    state: State,
    payload: Annotated[Any, Body(description="the signal's payload: any JSON")] = None,
) -> schemas.Signalled:
    """Send a named signal (the body is its payload) to a run: it settles the run's wait for
    that signal (`Wait(signal=NAME)`), or is kept for its next one. 409 if the run ended."""
    return await ops.signal(state, p, run_id, name, payload)


@router.post(
    "/runs/{run_id}/feedback",
    response_model=schemas.FeedbackGiven,
    responses=NOT_FOUND,
    tags=["runs"],
)
async def run_feedback(
    run_id: str, body: schemas.FeedbackIn, p: Operator, state: State
) -> schemas.FeedbackGiven:
    """Score a run (0 bad .. 1 good): recorded, and learnt from by the learning router."""
    return await ops.feedback(state, p, run_id, body)


@router.post(
    "/runs/{run_id}/pause", response_model=schemas.Paused, responses=NOT_FOUND, tags=["runs"]
)
async def pause_run(run_id: str, p: Operator, state: State) -> schemas.Paused:
    """Pause the run at its next step boundary (status `paused`, lease released)."""
    return await ops.pause(state, p, run_id)


@router.post(
    "/runs/{run_id}/unpause", response_model=schemas.Paused, responses=NOT_FOUND, tags=["runs"]
)
async def unpause_run(run_id: str, p: Operator, state: State) -> schemas.Paused:
    """Queue a paused run again; a worker continues it from its journal."""
    return await ops.unpause(state, p, run_id)


@router.post(
    "/runs/{run_id}/rollback",
    response_model=schemas.RollbackOut,
    responses=NOT_FOUND,
    tags=["runs"],
)
async def rollback_run(
    run_id: str, p: Operator, state: State, body: schemas.RollbackRequest | None = None
) -> schemas.RollbackOut:
    """Run the declared undo of the run's executed effects, newest first."""
    return await ops.rollback(state, p, run_id, body.last if body else None)


# -- agents ---------------------------------------------------------------------------


@router.get("/agents", response_model=list[schemas.AgentOut], tags=["agents"])
async def list_agents(p: Reader, state: State) -> list[schemas.AgentOut]:
    """The agents this server runs: version, model, autonomy levels, policy, tools."""
    return await ops.agents(state, p)


# -- approvals ------------------------------------------------------------------------


@router.get("/approvals", response_model=list[schemas.Approval], tags=["approvals"])
async def list_approvals(
    p: Reader,
    state: State,
    status: ApprovalStatus | Literal["all"] = ApprovalStatus.PENDING,
    run_id: Annotated[str | None, Query(max_length=200)] = None,
) -> list[schemas.Approval]:
    """The caller's tenant's approvals, oldest first (pending ones by default)."""
    return await ops.approvals(state, p, None if status == "all" else status, run_id)


@router.post(
    "/approvals/{approval_id}/approve",
    response_model=schemas.Approval,
    tags=["approvals"],
    responses=CONFLICT,
)
async def approve(
    approval_id: str, p: Approver, state: State, body: schemas.ApproveRequest | None = None
) -> schemas.Approval:
    """Approve a pending call, optionally with edited arguments (validated against the
    tool's schema). The run continues once all its approvals are resolved."""
    body = body or schemas.ApproveRequest()
    return await ops.approve(state, p, approval_id, body.arguments, body.comment)


@router.post(
    "/approvals/{approval_id}/deny",
    response_model=schemas.Approval,
    responses=CONFLICT,
    tags=["approvals"],
)
async def deny(
    approval_id: str, body: schemas.DenyRequest, p: Approver, state: State
) -> schemas.Approval:
    """Refuse a pending call; the agent is told the reason."""
    return await ops.deny(state, p, approval_id, body.reason)


# -- kill switches ----------------------------------------------------------------------


@router.get("/kill-switches", response_model=list[schemas.KillSwitchOut], tags=["controls"])
async def list_kill_switches(p: Reader, state: State) -> list[schemas.KillSwitchOut]:
    return [schemas.KillSwitchOut.of(k) for k in await ops.kill_switches(state, p)]


@router.post(
    "/kill-switches", status_code=201, response_model=schemas.KillSwitchOut, tags=["controls"]
)
async def set_kill_switch(
    body: schemas.KillRequest, p: Operator, state: State
) -> schemas.KillSwitchOut:
    """Stop every new action in the scope now; running runs halt at their next step.
    Operators and admins may set `tenant:<their tenant>`; every other scope stops other
    tenants too and needs a platform key."""
    return schemas.KillSwitchOut.of(await ops.kill(state, p, body.scope, body.reason))


@router.delete(
    "/kill-switches/{scope}", response_model=schemas.Cleared, responses=NOT_FOUND, tags=["controls"]
)
async def clear_kill_switch(scope: str, p: Operator, state: State) -> schemas.Cleared:
    return schemas.Cleared(scope=scope, cleared=await ops.unkill(state, p, scope))


# -- usage --------------------------------------------------------------------------------


@router.get("/usage", response_model=schemas.UsageOut, tags=["usage"])
async def get_usage(
    p: Reader,
    state: State,
    group_by: UsageBy = UsageBy.AGENT,
    since: Annotated[float | None, Query(description="epoch s; default 30 days ago")] = None,
    until: Annotated[float | None, Query(description="epoch s; default now")] = None,
) -> schemas.UsageOut:
    """Tokens and cost of the caller's tenant, by agent, model, user, session, tag, day,
    run or root (a run tree's top run): the sums `bosun usage --by` prints."""
    return await usage(state, p, group_by, since, until)


# -- keys and tenants ----------------------------------------------------------------------


@router.get("/keys", response_model=list[schemas.KeyOut], tags=["keys"])
async def list_keys(
    p: Admin, state: State, tenant: Annotated[str | None, Query(max_length=64)] = None
) -> list[schemas.KeyOut]:
    """API keys, secrets never shown again: an admin key lists its own tenant's, a platform
    key every tenant's (or the `tenant` named)."""
    return [schemas.KeyOut.of(k) for k in await ops.list_keys(state, p, tenant)]


@router.post("/keys", status_code=201, response_model=schemas.CreatedKey, tags=["keys"])
async def create_api_key(body: schemas.CreateKey, p: Admin, state: State) -> schemas.CreatedKey:
    """Create a key (shown once). An admin key creates keys of its own tenant; another
    tenant's, and platform keys, need a platform key."""
    record, text = await ops.create_key(state, p, body)
    return schemas.CreatedKey(**schemas.KeyOut.of(record).model_dump(), key=text)


@router.delete("/keys/{key_id}", response_model=schemas.Revoked, responses=NOT_FOUND, tags=["keys"])
async def revoke_api_key(key_id: str, p: Admin, state: State) -> schemas.Revoked:
    """Revoke a key and end its console sessions and open streams (404 for another tenant's
    key, unless the caller is a platform key)."""
    revoked = await ops.revoke_key(state, p, key_id)
    state.liveness.end_key(key_id)  # its open streams (and its sessions' streams) end now
    return schemas.Revoked(key_id=key_id, revoked=revoked)


@router.get("/tenants", response_model=list[schemas.TenantOut], tags=["keys"])
async def list_tenants(p: Platform, state: State) -> list[schemas.TenantOut]:
    """Every tenant seen in keys or runs, with its key and run counts (platform keys only)."""
    return [
        schemas.TenantOut.model_validate(t, from_attributes=True)
        for t in await ops.tenants(state, p)
    ]
