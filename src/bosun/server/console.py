"""The web console: server-rendered pages (Jinja2) made live with htmx and Server-Sent
Events. Every page but /login needs a console session; every form that changes anything
carries the session's CSRF token, and the login form its own (a cookie set with the form:
another site can neither read it nor make the browser send it). Actions go through
`bosun.server.ops`, like the API.

The banner after an action (`?msg=` / `?err=`) is signed with the session's own secret and
shown only when the signature holds: a link from elsewhere cannot make the console say
anything, and one session's banner means nothing in another."""

from __future__ import annotations

import hmac
import secrets
import time
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import orjson
from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from bosun.errors import BosunError
from bosun.observe.reviews import reviewer_rates
from bosun.observe.timeline import TEAM_STORY_MAX, format_cost, format_duration, format_time
from bosun.observe.tree import ordered_tree
from bosun.server import ops, schemas, views
from bosun.server.auth import (
    SESSION_COOKIE,
    caller_of,
    check_blocked,
    check_csrf,
    client_ip,
    record_failure,
    start_session,
    token_hash,
)
from bosun.server.keys import Principal, verify_key
from bosun.server.ops import MAX_PAGE
from bosun.server.state import ServerState, state_of
from bosun.server.usage import DAY, day_range, usage
from bosun.store.base import TERMINAL_STATUSES
from bosun.workflow.tasks import inbox as human_tasks

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
templates.env.filters.update(
    cost=format_cost,
    when=format_time,
    duration=format_duration,
    pretty=views.pretty,
    tokens=lambda n: f"{n:,}",
)
STATUSES = [str(s) for s in schemas.RunStatus]


class LoginRequired(Exception):
    pass


async def console_user(request: Request) -> Principal:
    """The session the middleware found (`bosun.server.middleware.Authenticate`); a form
    post is held to the CSRF token in its form here, once the form is read."""
    caller = caller_of(request)
    if caller is None or caller.session is None:
        raise LoginRequired
    if not caller.csrf_checked:
        await check_csrf(request, caller.session)
    return caller.principal


User = Annotated[Principal, Depends(console_user)]
State = Annotated[ServerState, Depends(state_of)]


def login_redirect(request: Request) -> Response:
    target = "/login?" + urlencode({"next": request.url.path})
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def page(request: Request, name: str, p: Principal | None, status: int = 200, **context: Any):
    csrf = getattr(request.state, "csrf", "")
    context.update(
        request=request,
        p=p,
        csrf=csrf,
        msg=_flash(request, csrf, "msg"),
        err=_flash(request, csrf, "err"),
        now=time.time(),
        terminal=TERMINAL_STATUSES,
    )
    return templates.TemplateResponse(request, name, context, status_code=status)


def back(
    request: Request, path: str, *, msg: str | None = None, err: str | None = None
) -> RedirectResponse:
    """Redirect to `path` with a banner (a success `msg` or an error `err`), signed for
    this session so that `page` shows it."""
    secret = getattr(request.state, "csrf", "")
    query = {k: v for k, v in (("msg", msg), ("err", err)) if v}
    for kind, text in list(query.items()):
        query[f"{kind}_sig"] = _flash_mac(secret, kind, text)
    glue = "&" if "?" in path else "?"
    return RedirectResponse(path + (glue + urlencode(query) if query else ""), status_code=303)


def _flash_mac(secret: str, kind: str, text: str) -> str:
    message = f"bosun-flash\0{kind}\0{text}".encode()
    return hmac.new(secret.encode(), message, "sha256").hexdigest()[:32]


def _flash(request: Request, secret: str, kind: str) -> str | None:
    """The banner text of the query, if this session signed it; else nothing."""
    text = request.query_params.get(kind)
    mac = request.query_params.get(f"{kind}_sig", "")
    expected = _flash_mac(secret, kind, text or "")
    if not text or not secret or not hmac.compare_digest(mac.encode(), expected.encode()):
        return None
    return text


def _safe_next(target: str | None) -> str:
    """A path on this server; never `//host` or `/\\host` (browsers read both as another
    host)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/runs"


# -- login ----------------------------------------------------------------------------


def _login_cookie(state: ServerState) -> str:
    # Over HTTPS the `__Host-` prefix keeps a sibling subdomain from planting the cookie.
    return "__Host-bosun_login" if state.settings.secure_cookies else "bosun_login"


def login_page(
    request: Request, state: ServerState, status: int = 200, *, next: str, error: str | None
) -> Response:
    """The login form with its token, also set as a cookie (the post must carry both)."""
    name = _login_cookie(state)
    token = request.cookies.get(name, "")
    if not (20 <= len(token) <= 64):
        token = secrets.token_urlsafe(24)
    response = page(request, "login.html", None, status, next=next, error=error, login_csrf=token)
    response.set_cookie(
        name,
        token,
        max_age=24 * 3600,
        httponly=True,
        samesite="strict",
        secure=state.settings.secure_cookies,
        path="/",
    )
    return response


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, state: State, next: str = "/runs"):
    return login_page(request, state, next=_safe_next(next), error=None)


@router.post("/login")
async def login(
    request: Request,
    state: State,
    key: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/runs",
    csrf: Annotated[str, Form()] = "",
):
    target = _safe_next(next)
    expected = request.cookies.get(_login_cookie(state), "")
    if not expected or not hmac.compare_digest(csrf.encode(), expected.encode()):
        return login_page(
            request,
            state,
            403,
            next=target,
            error="This login form has expired or was sent from another site: log in here.",
        )
    try:
        await check_blocked(state, client_ip(request))
        record, why = await verify_key(state.runtime.store, key)
        if record is None:
            raise await record_failure(state, request, why)
    except HTTPException as exc:
        return login_page(request, state, exc.status_code, next=target, error=exc.detail)
    token, _ = await start_session(state, record.id)
    response = RedirectResponse(target, status_code=303)
    response.delete_cookie(
        _login_cookie(state),
        path="/",
        httponly=True,
        samesite="strict",
        secure=state.settings.secure_cookies,
    )
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
    state.liveness.end_session(token_hash(token))  # its live streams end now
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
    request: Request,
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
        return back(request, "/runs", err=_detail(exc))
    return back(request, f"/runs/{submitted.run_id}", msg="Run submitted: a worker is starting it.")


async def _run_context(state: ServerState, p: Principal, run_id: str) -> dict[str, Any]:
    run, items = await ops.events(state, p, run_id)
    end = run.finished_at or time.time()
    tree = (await ops.list_runs(state, p, root_id=run.root_id or run.id, limit=MAX_PAGE)).runs
    reviews = []
    if 1 < len(tree) <= TEAM_STORY_MAX:  # reviewers are child runs: the tree holds them
        events: list[tuple[int, Any]] = []
        for r in tree:
            events += (await ops.events(state, p, r.run_id))[1]
        reviews = reviewer_rates(events)
    return {
        "run": run,
        "tree": ordered_tree(tree, id_field="run_id") if len(tree) > 1 else [],
        "reviews": reviews,
        "items": views.timeline(items, run.spec.get("instructions") or ""),
        "last_seq": items[-1][0] if items else 0,
        "pending": await ops.approvals(state, p, "pending", run_id),
        "elapsed": end - run.created_at,
        "media": views.media(items),
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
async def cancel_run(request: Request, run_id: str, p: User, state: State):
    try:
        result = await ops.cancel(state, p, run_id)
    except (HTTPException, BosunError) as exc:
        return back(request, f"/runs/{run_id}", err=_detail(exc))
    return back(request, f"/runs/{run_id}", msg=result.message)


@router.post("/runs/{run_id}/feedback")
async def feedback_run(
    request: Request, run_id: str, p: User, state: State, score: Annotated[float, Form()]
):
    """The thumbs: 1 or 0 for the learning router (`ops.feedback`, as the API)."""
    try:
        result = await ops.feedback(state, p, run_id, schemas.FeedbackIn(score=score))
    except (HTTPException, BosunError, ValueError) as exc:
        return back(request, f"/runs/{run_id}", err=_detail(exc))
    learnt = f"; the router learnt from {result.decisions} decision(s)" if result.decisions else ""
    return back(request, f"/runs/{run_id}", msg=f"feedback recorded{learnt}")


@router.post("/runs/{run_id}/pause")
async def pause_run(request: Request, run_id: str, p: User, state: State):
    try:
        result = await ops.pause(state, p, run_id)
    except (HTTPException, BosunError) as exc:
        return back(request, f"/runs/{run_id}", err=_detail(exc))
    return back(request, f"/runs/{run_id}", msg=result.message)


@router.post("/runs/{run_id}/unpause")
async def unpause_run(request: Request, run_id: str, p: User, state: State):
    try:
        result = await ops.unpause(state, p, run_id)
    except (HTTPException, BosunError) as exc:
        return back(request, f"/runs/{run_id}", err=_detail(exc))
    return back(request, f"/runs/{run_id}", msg=result.message)


@router.post("/runs/{run_id}/rollback")
async def rollback_run(request: Request, run_id: str, p: User, state: State):
    try:
        report = await ops.rollback(state, p, run_id, None)
    except (HTTPException, BosunError) as exc:
        return back(request, f"/runs/{run_id}", err=_detail(exc))
    parts = [f"undone: {', '.join(report.compensated) or 'nothing'}"]
    if report.failed:
        parts.append(f"undo FAILED: {', '.join(report.failed)}")
    if report.missing:
        parts.append(f"no undo, reverse by hand: {', '.join(report.missing)}")
    return back(request, f"/runs/{run_id}", msg="Rollback: " + "; ".join(parts))


# -- approvals ------------------------------------------------------------------------------


async def _inbox(state: ServerState, p: Principal) -> dict[str, Any]:
    pending = await ops.approvals(state, p, "pending")
    runs = {}
    for a in pending:
        if a.run_id not in runs:
            runs[a.run_id] = await state.runtime.store.get_run(a.run_id)
    decided = [a for a in await ops.approvals(state, p, None) if a.status != "pending"]
    decided.sort(key=lambda a: a.decided_at or 0, reverse=True)
    # Workflows' human tasks wait for a person too: one inbox shows both (the form is on
    # the Tasks page, where it is answered).
    waiting = await human_tasks(state.runtime.store, p.tenant)
    return {"pending": pending, "runs": runs, "decided": decided[:20], "tasks": waiting}


@router.get("/approvals", response_class=HTMLResponse)
async def approvals_page(request: Request, p: User, state: State):
    return page(request, "approvals.html", p, nav="approvals", **await _inbox(state, p))


@router.get("/approvals/list", response_class=HTMLResponse)
async def approvals_list(request: Request, p: User, state: State):
    return page(request, "_approvals.html", p, **await _inbox(state, p))


@router.post("/approvals/{approval_id}/approve")
async def approve(
    request: Request,
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
        return back(request, target, err=_detail(exc))
    how = "with your edits" if edit is not None else "as proposed"
    return back(
        request, target, msg=f"Approved {record.tool} {how}; run {record.run_id} continues."
    )


@router.post("/approvals/{approval_id}/deny")
async def deny(
    request: Request,
    approval_id: str,
    p: User,
    state: State,
    reason: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/approvals",
):
    target = _safe_next(next)
    if not reason.strip():
        return back(request, target, err="Say why you deny it: the agent is told your reason.")
    try:
        record = await ops.deny(state, p, approval_id, reason.strip())
    except (HTTPException, BosunError) as exc:
        return back(request, target, err=_detail(exc))
    return back(request, target, msg=f"Denied {record.tool}; the agent is told: {reason.strip()}")


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
    request: Request,
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
        return back(request, "/controls", err=_detail(exc))
    return back(
        request, "/controls", msg=f"Kill switch {switch.scope} set: nothing there executes now."
    )


@router.post("/controls/unkill")
async def unkill(request: Request, p: User, state: State, scope: Annotated[str, Form()] = ""):
    try:
        cleared = await ops.unkill(state, p, scope)
    except (HTTPException, BosunError) as exc:
        return back(request, "/controls", err=_detail(exc))
    if not cleared:
        return back(request, "/controls", err=f"No kill switch was set for {scope}.")
    return back(request, "/controls", msg=f"Kill switch {scope} cleared.")


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
