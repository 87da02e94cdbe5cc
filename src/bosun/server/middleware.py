"""What every request goes through before any route sees it: security headers on every
response, a bound on the request body, and authentication, in that order (outermost first).

Plain ASGI classes, not Starlette's `BaseHTTPMiddleware`: that one buffers and re-wraps
bodies, where these must pass a body through untouched, count it as it arrives, or never
read it at all. Authentication has to happen here, not only in the routes' dependencies:
FastAPI reads and parses a request's body before it runs the dependencies, so a route-level
check would buffer an anonymous 300 MB upload before refusing it.

Every path needs a caller except `PUBLIC` ones (and signed webhooks under `/hooks/`). Under `/api/` and `/metrics` the caller is a
bearer key or a console session (401 otherwise); every other path is the console and needs
its session (else the login page). A request that changes something with a cookie (or logs
in) must also come from our own pages (`check_same_origin`).
"""

from __future__ import annotations

from fastapi import HTTPException
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bosun.errors import StoreError
from bosun.server.a2a.access import is_card, open_to_anyone
from bosun.server.auth import NO_KEY, SAFE_METHODS, AuthFailed, check_same_origin, identify
from bosun.server.console import login_redirect

RETRY_AFTER_SECONDS = 2  # what a 503 tells clients while the database fails

PUBLIC = frozenset({"/", "/login", "/healthz", "/readyz", "/openapi.json"})
# `/hooks/`: webhooks authenticate by their signature (`bosun.server.hooks`), not by a key.
PUBLIC_PREFIXES = ("/static/", "/hooks/")

# Scripts, styles, images, fetches and forms from this server only; no frames of us
# anywhere, no plugins, no <base>. The console has no inline script or style (see
# static/console.js), so none is allowed.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none';"
    " base-uri 'none'"
)
SECURITY_HEADERS = (
    ("content-security-policy", CSP),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    # `same-origin`, not `no-referrer`: with no-referrer browsers send `Origin: null` on our
    # own form posts, which then could not be told from another site's.
    ("referrer-policy", "same-origin"),
    ("cross-origin-opener-policy", "same-origin"),
)


class SecurityHeaders:
    """Adds `SECURITY_HEADERS` to every response, and `Cache-Control: no-store` to all but
    the static files (pages and API answers carry a tenant's data)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Static files and A2A agent cards (public, and cached by A2A clients) keep their own.
        static = scope["path"].startswith("/static/") or is_card(scope["path"])

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS:
                    headers[name] = value
                if not static:
                    headers["cache-control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyTooLarge(HTTPException):  # an HTTPException: FastAPI re-raises it as it is
    def __init__(self, limit: int):
        super().__init__(
            413,
            f"request body over the server's limit of {limit:,} bytes: send less (or start"
            " `bosun serve --max-body-bytes N` for larger bodies)",
        )


class BodyLimit:
    """Refuses request bodies over `limit` bytes with 413: at once when `Content-Length`
    says so (nothing is read), else by counting a chunked body as it arrives and stopping
    at the limit. The rest of an oversized upload is discarded by the server as it comes
    in (uvicorn, once the response is complete), never buffered."""

    def __init__(self, app: ASGIApp, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await _refuse(BodyTooLarge(self.limit), scope, receive, send)
            return
        received = 0
        over = False
        started = False

        async def receive_limited() -> Message:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    over = True
                    raise BodyTooLarge(self.limit)
            return message

        async def send_unless_over(message: Message) -> None:
            nonlocal started
            if over and not started:
                return  # whatever the app made of a cut body (a 400?) gives way to the 413
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive_limited, send_unless_over)
        except Exception:
            if not over or started:
                raise
        if over and not started:
            await _refuse(BodyTooLarge(self.limit), scope, receive, send)


class Authenticate:
    """Finds the caller (`bosun.server.auth.identify`) before the route runs, from the
    headers alone (the body is not available here), and answers at once when there is
    none: 401 on the API, the login page on the console."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if _has_nul(scope):
            await _refuse(URL_NUL, scope, receive, send)
            return
        a2a = path.startswith("/a2a/")
        public = path in PUBLIC or path.startswith(PUBLIC_PREFIXES) or is_card(path)
        api = path == "/metrics" or path.startswith("/api/") or a2a
        request = Request(scope)  # no receive channel: the body cannot be read here
        try:
            if request.method not in SAFE_METHODS and "authorization" not in request.headers:
                check_same_origin(request)  # cookies and the login form: browsers only
            caller = None if public else await identify(request, bearer=api)
        except HTTPException as exc:
            await _refuse(exc, scope, receive, send)
            return
        except StoreError as exc:  # the key cannot be checked now: neither 401 nor a 500
            await _refuse(store_unavailable(exc), scope, receive, send)
            return
        if caller is not None:
            request.state.caller = caller
        elif not public and not (a2a and open_to_anyone(scope, path)):
            if api:
                await _refuse(AuthFailed(NO_KEY), scope, receive, send)
            else:
                await login_redirect(request)(scope, receive, send)
            return
        await self.app(scope, receive, send)


URL_NUL = HTTPException(422, "the URL contains a NUL character (%00): remove it")


def _has_nul(scope: Scope) -> bool:
    """A NUL in the path or the query: no id, filter or name holds one (PostgreSQL text
    cannot), so it is a clear 422 here rather than a database error later."""
    raw = scope.get("raw_path") or scope["path"].encode()
    return b"%00" in raw or b"\x00" in raw or b"%00" in scope.get("query_string", b"")


def store_unavailable(exc: StoreError) -> HTTPException:
    """The 503 every edge answers while the database fails (and when to try again)."""
    return HTTPException(
        503,
        f"the database cannot be used right now; try again shortly ({exc})",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


async def _refuse(exc: HTTPException, scope: Scope, receive: Receive, send: Send) -> None:
    response = JSONResponse({"detail": exc.detail}, exc.status_code, headers=exc.headers)
    await response(scope, receive, send)
