"""The web console: server-rendered pages (Jinja2) made live with htmx and Server-Sent
Events. Every page but /login needs a console session; every form that changes anything
carries the session's CSRF token. Actions go through `bosun.server.ops`, like the API."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import orjson
from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from bosun.errors import BosunError
from bosun.observe.timeline import format_cost, format_duration, format_time
from bosun.server import ops, schemas, views
from bosun.server.auth import (
    SAFE_METHODS,
    SESSION_COOKIE,
    check_blocked,
    check_csrf,
    client_ip,
    record_failure,
    session_of,
    start_session,
    token_hash,
)
from bosun.server.keys import Principal, verify_key
from bosun.server.state import ServerState, state_of
from bosun.server.usage import DAY, day_range, usage
from bosun.store.base import TERMINAL_STATUSES

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
templates.env.filters.update(
    cost=format_cost,
    when=format_time,
    duration=format_duration,
    pretty=views.pretty,
    tokens=lambda n: f"{n:,}",
)
STATUSES = list(schemas.RunStatus.__args__)  # type: ignore[attr-defined]


class LoginRequired(Exception):
    pass


async def console_user(request: Request) -> Principal:
    found = await session_of(request)
    if found is None:
        raise LoginRequired
    principal, session = found
    if request.method not in SAFE_METHODS:
        await check_csrf(request, session)
    return principal


User = Annotated[Principal, Depends(console_user)]
State = Annotated[ServerState, Depends(state_of)]


def login_redirect(request: Request) -> Response:
    target = "/login?" + urlencode({"next": request.url.path})
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def page(request: Request, name: str, p: Principal | None, status: int = 200, **context: Any):
    context.update(
        request=request,
        p=p,
        csrf=getattr(request.state, "csrf", ""),
        msg=request.query_params.get("msg"),
        err=request.query_params.get("err"),
        now=time.time(),
        terminal=TERMINAL_STATUSES,
    )
    return templates.TemplateResponse(request, name, context, status_code=status)


def back(path: str, *, msg: str | None = None, err: str | None = None) -> RedirectResponse:
    query = {k: v for k, v in (("msg", msg), ("err", err)) if v}
    return RedirectResponse(path + ("?" + urlencode(query) if query else ""), status_code=303)


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/runs"


# -- login ----------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str = "/runs"):
    return page(request, "login.html", None, next=_safe_next(next), error=None)


@router.post("/login")
async def login(
    request: Request, state: State, key: Annotated[str, Form()] = "", next: str = Form("/runs")
):
    target = _safe_next(next)
    try:
        await check_blocked(state, client_ip(request))
        record, why = await verify_key(state.runtime.store, key)
        if record is None:
            raise await record_failure(state, request, why)
    except HTTPException as exc:
        return page(request, "login.html", None, exc.status_code, next=target, error=exc.detail)
    token, _ = await start_session(state, record.id)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(state.settings.session_seconds),
        httponly=True,
        samesite="strict",
        secure=state.settings.secure_cookies,
        path="/",
    )
    return response


@router.post("/logout")
async def logout(request: Request, state: State, p: User):
    token = request.cookies.get(SESSION_COOKIE, "")
    await state.runtime.store.delete_console_session(token_hash(token))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/")
async def home():
    return RedirectResponse("/runs", status_code=303)


# -- runs --------------------------------------------------------------------------------


def _filters(request: Request) -> dict[str, str]:
    q = request.query_params
    return {k: q.get(k, "").strip() for k in ("agent", "status", "tag", "user", "days")}


async def _runs(state: ServerState, p: Principal, f: dict[str, str], offset: int):
    since = None
    if f["days"]:
        try:
            since = time.time() - float(f["days"]) * DAY
        except ValueError:
            since = None
    return await ops.list_runs(
        state,
        p,
        agent=f["agent"] or None,
        status=f["status"] if f["status"] in STATUSES else None,
        tag=ops.parse_tag(f["tag"]) if "=" in f["tag"] else None,
        user=f["user"] or None,
        since=since,
        limit=50,
        offset=offset,
    )


@router.get("/runs", response_class=HTMLResponse)
async def runs_page(request: Request, p: User, state: State, offset: int = 0):
    f = _filters(request)
    return page(
        request,
        "runs.html",
        p,
        nav="runs",
        f=f,
        page=await _runs(state, p, f, max(offset, 0)),
        query=urlencode({k: v for k, v in f.items() if v}),
        statuses=STATUSES,
        agents=sorted(state.agents),
    )


@router.get("/runs/table", response_class=HTMLResponse)
async def runs_table(request: Request, p: User, state: State, offset: int = 0):
    f = _filters(request)
    return page(
        request,
        "_runs_table.html",
        p,
        f=f,
        page=await _runs(state, p, f, max(offset, 0)),
        query=urlencode({k: v for k, v in f.items() if v}),
    )


@router.post("/runs")
async def start_run(
    p: User,
    state: State,
    agent: Annotated[str, Form()],
    input: Annotated[str, Form()],
    user: Annotated[str, Form()] = "",
    tags: Annotated[str, Form()] = "",
):
    try:
        pairs = [t.strip() for t in tags.replace(",", " ").split() if t.strip()]
        parsed = dict(ops.parse_tag(t) for t in pairs)  # type: ignore[misc]
        body = schemas.SubmitRun(agent=agent, input=input, user=user or None, tags=parsed)
        submitted = await ops.submit(state, p, body)
    except (HTTPException, BosunError, ValueError) as exc:
        return back("/runs", err=_detail(exc))
    return back(f"/runs/{submitted.run_id}", msg="Run submitted: a worker is starting it.")


async def _run_context(state: ServerState, p: Principal, run_id: str) -> dict[str, Any]:
    run, items = await ops.events(state, p, run_id)
    end = run.finished_at or time.time()
    return {
        "run": run,
        "items": views.timeline(items),
        "last_seq": items[-1][0] if items else 0,
        "pending": await ops.approvals(state, p, "pending", run_id),
        "elapsed": end - run.created_at,
    }


@router.get("/runs/{run_id}", response_class=HTMLResponse)
async def run_page(request: Request, run_id: str, p: User, state: State):
    try:
        context = await _run_context(state, p, run_id)
    except HTTPException as exc:
        return page(request, "error.html", p, exc.status_code, nav="runs", error=exc.detail)
    return page(request, "run.html", p, nav="runs", **context)


@router.get("/runs/{run_id}/live", response_class=HTMLResponse)
async def run_live(request: Request, run_id: str, p: User, state: State):
    return page(request, "_run_live.html", p, **await _run_context(state, p, run_id))


@router.post("/runs/{run_id}/cancel")
async def cancel_run(run_id: str, p: User, state: State):
    try:
        result = await ops.cancel(state, p, run_id)
    except (HTTPException, BosunError) as exc:
        return back(f"/runs/{run_id}", err=_detail(exc))
    return back(f"/runs/{run_id}", msg=result.message)


@router.post("/runs/{run_id}/rollback")
async def rollback_run(run_id: str, p: User, state: State):
    try:
        report = await ops.rollback(state, p, run_id, None)
    except (HTTPException, BosunError) as exc:
        return back(f"/runs/{run_id}", err=_detail(exc))
    parts = [f"undone: {', '.join(report.compensated) or 'nothing'}"]
    if report.failed:
        parts.append(f"undo FAILED: {', '.join(report.failed)}")
    if report.missing:
        parts.append(f"no undo, reverse by hand: {', '.join(report.missing)}")
    return back(f"/runs/{run_id}", msg="Rollback: " + "; ".join(parts))


# -- approvals ------------------------------------------------------------------------------


async def _inbox(state: ServerState, p: Principal) -> dict[str, Any]:
    pending = await ops.approvals(state, p, "pending")
    runs = {}
    for a in pending:
        if a.run_id not in runs:
            runs[a.run_id] = await state.runtime.store.get_run(a.run_id)
    decided = [a for a in await ops.approvals(state, p, None) if a.status != "pending"]
    decided.sort(key=lambda a: a.decided_at or 0, reverse=True)
    return {"pending": pending, "runs": runs, "decided": decided[:20]}


@router.get("/approvals", response_class=HTMLResponse)
async def approvals_page(request: Request, p: User, state: State):
    return page(request, "approvals.html", p, nav="approvals", **await _inbox(state, p))


@router.get("/approvals/list", response_class=HTMLResponse)
async def approvals_list(request: Request, p: User, state: State):
    return page(request, "_approvals.html", p, **await _inbox(state, p))


@router.post("/approvals/{approval_id}/approve")
async def approve(
    approval_id: str,
    p: User,
    state: State,
    comment: Annotated[str, Form()] = "",
    arguments: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/approvals",
):
    target = _safe_next(next)
    edit = None
    try:
        if arguments.strip():
            try:
                edit = orjson.loads(arguments)
            except orjson.JSONDecodeError as exc:
                raise BosunError(f"edited arguments are not valid JSON: {exc}") from None
            if not isinstance(edit, dict):
                raise BosunError('edited arguments must be a JSON object, e.g. {"amount": 50}')
        record = await ops.approve(state, p, approval_id, edit, comment or None)
    except (HTTPException, BosunError) as exc:
        return back(target, err=_detail(exc))
    how = "with your edits" if edit is not None else "as proposed"
    return back(target, msg=f"Approved {record.tool} {how}; run {record.run_id} continues.")


@router.post("/approvals/{approval_id}/deny")
async def deny(
    approval_id: str,
    p: User,
    state: State,
    reason: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/approvals",
):
    target = _safe_next(next)
    if not reason.strip():
        return back(target, err="Say why you deny it: the agent is told your reason.")
    try:
        record = await ops.deny(state, p, approval_id, reason.strip())
    except (HTTPException, BosunError) as exc:
        return back(target, err=_detail(exc))
    return back(target, msg=f"Denied {record.tool}; the agent is told: {reason.strip()}")


# -- controls ---------------------------------------------------------------------------------


@router.get("/controls", response_class=HTMLResponse)
async def controls_page(request: Request, p: User, state: State):
    return page(
        request,
        "controls.html",
        p,
        nav="controls",
        switches=await ops.kill_switches(state, p),
        agents=await ops.agents(state, p),
    )


@router.post("/controls/kill")
async def kill(
    p: User,
    state: State,
    scope: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
):
    try:
        if not reason.strip():
            raise BosunError(
                "Say why: the reason is shown to everyone and kept in the audit trail."
            )
        switch = await ops.kill(state, p, scope, reason.strip())
    except (HTTPException, BosunError) as exc:
        return back("/controls", err=_detail(exc))
    return back("/controls", msg=f"Kill switch {switch.scope} set: nothing there executes now.")


@router.post("/controls/unkill")
async def unkill(p: User, state: State, scope: Annotated[str, Form()] = ""):
    try:
        cleared = await ops.unkill(state, p, scope)
    except (HTTPException, BosunError) as exc:
        return back("/controls", err=_detail(exc))
    if not cleared:
        return back("/controls", err=f"No kill switch was set for {scope}.")
    return back("/controls", msg=f"Kill switch {scope} cleared.")


# -- costs ----------------------------------------------------------------------------------


@router.get("/costs", response_class=HTMLResponse)
async def costs_page(request: Request, p: User, state: State, days: int = 30):
    days = min(max(days, 1), 366)
    until = time.time()
    since = until - days * DAY
    by_day = await usage(state, p, "day", since, until)
    days_seen = {g.key: g for g in by_day.groups}
    zero = schemas.UsageGroup(
        key="", runs=0, model_calls=0, input_tokens=0, output_tokens=0, cost=0.0
    )
    series = [days_seen.get(d, zero.model_copy(update={"key": d})) for d in day_range(since, until)]
    charts = {}
    for group in ("agent", "tag", "user"):
        result = await usage(state, p, group, since, until)
        charts[group] = (
            views.hbar_chart(
                [(g.key, g.cost) for g in result.groups], unit="$", title=f"spend by {group}"
            ),
            views.hbar_chart(
                [(g.key, g.input_tokens + g.output_tokens) for g in result.groups],
                title=f"tokens by {group}",
            ),
            result.groups,
        )
    return page(
        request,
        "costs.html",
        p,
        nav="costs",
        days=days,
        total=by_day.total,
        spend_chart=views.bar_chart(
            [(g.key, g.cost) for g in series], unit="$", title="spend per day"
        ),
        tokens_chart=views.bar_chart(
            [(g.key, g.input_tokens + g.output_tokens) for g in series],
            title="tokens per day",
        ),
        charts=charts,
    )


def _detail(exc: Exception) -> str:
    if isinstance(exc, HTTPException):
        return str(exc.detail)
    return str(exc)


def quote_tag(key: str, value: str) -> str:
    return quote(f"{key}={value}")


templates.env.globals["quote_tag"] = quote_tag
