"""Authentication for the API and the console: bearer keys, console sessions, CSRF, the
client's address, and rate-limited, audited failures.

A request authenticates with `Authorization: Bearer bosun_<id>_<secret>` (API clients,
Prometheus) or with the console's session cookie. A cookie-authenticated request that
changes anything must also carry the session's CSRF token (`X-CSRF-Token` header or a
`csrf` form field): another site can make the browser send the cookie, never the token.

`identify` runs in `bosun.server.middleware.Authenticate`, before any route and before the
body is read (FastAPI reads a body before it runs a route's dependencies); the route's
dependency (`authenticate`, the console's `console_user`) then takes the caller it found.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import time
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Request

from bosun.journal.audit import AuditEntry
from bosun.server.keys import Principal, roles_granting, verify_key
from bosun.server.state import ServerState, server_state
from bosun.store.base import ConsoleSession

SESSION_COOKIE = "bosun_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_TOUCH_EVERY = 60.0  # seconds between `last_used_at` writes for one key


@dataclass(frozen=True, slots=True)
class Caller:
    """Who a request authenticated as, and how (the middleware leaves it in request.state)."""

    principal: Principal
    session: ConsoleSession | None = None  # the console's cookie (None: a bearer key)
    csrf_checked: bool = True  # False: a cookie form post whose token is in the form itself


def client_ip(request: Request) -> str:
    """The client's address: the TCP peer, unless the peer is one of the trusted proxies
    (`Settings.trusted_proxies`). Then `X-Forwarded-For` is read from the right, each entry
    believed only while the address before it is a trusted proxy: the result is the
    right-most address that is not one. From anyone else the header is ignored (it says
    whatever they wrote), and so are entries a client puts left of its own address."""
    address = request.client.host if request.client else "unknown"
    proxies = server_state(request).proxies
    chain = [h.strip() for v in request.headers.getlist("x-forwarded-for") for h in v.split(",")]
    for hop in reversed([h for h in chain if h]):
        if not _is_proxy(address, proxies):
            break
        try:
            address = str(ipaddress.ip_address(hop))
        except ValueError:
            break  # not an address: nothing further left is believed
    return address


def _is_proxy(address: str, proxies) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in proxies)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class AuthFailed(HTTPException):
    def __init__(self, detail: str, status_code: int = 401):
        headers = {"WWW-Authenticate": "Bearer"} if status_code == 401 else None
        super().__init__(status_code=status_code, detail=detail, headers=headers)


async def check_blocked(state: ServerState, ip: str) -> None:
    until = state.blocked.get(ip)
    if until is not None:
        if until > time.time():
            raise AuthFailed(
                "too many failed authentication attempts from this address; try again in a"
                f" minute ({until - time.time():.0f} s)",
                429,
            )
        state.blocked.pop(ip, None)


async def record_failure(state: ServerState, request: Request, why: str) -> AuthFailed:
    """Count the failure against the client's address (shared across processes) and audit it.
    Returns the error to raise: 401, or 429 once the address is over its limit."""
    return await count_failure(state, client_ip(request), request.url.path, request.method, why)


async def count_failure(
    state: ServerState, ip: str, path: str, method: str, why: str
) -> AuthFailed:
    """`record_failure` for an edge that has no FastAPI request (`bosun mcp serve`'s ASGI
    guard): the same limit, counter and audit records, so a client cannot get more guesses
    by switching between the API and MCP."""
    store = state.runtime.store
    limit = state.settings.auth_failures_per_minute
    allowed = await store.take_rate(f"auth-failure:{ip}", limit=limit, window_seconds=60)
    now = time.time()
    if allowed:
        await store.append_audit(
            [
                AuditEntry(
                    now,
                    f"ip:{ip}",
                    "auth_failed",
                    path,
                    {"reason": why, "method": method},
                )
            ]
        )
        return AuthFailed(f"authentication failed: {why}")
    if ip not in state.blocked:
        await store.append_audit(
            [AuditEntry(now, f"ip:{ip}", "auth_rate_limited", path, {"limit": limit})]
        )
    state.blocked[ip] = (now // 60 + 1) * 60
    return AuthFailed(
        f"too many failed authentication attempts from this address (over {limit} a minute);"
        " try again in a minute",
        429,
    )


async def touch(state: ServerState, key_id: str) -> None:
    """Note the key's use (`last_used_at`), at most once a minute per key."""
    now = time.time()
    if now - state.touched.get(key_id, 0.0) > _TOUCH_EVERY:
        state.touched[key_id] = now
        await state.runtime.store.touch_api_key(key_id, now=now)


async def identify(request: Request, *, bearer: bool) -> Caller | None:
    """The caller from a bearer key (where `bearer`: the API) or the console's session
    cookie; None when the request carries neither. Raises 401/429 for a bad key, 403 for a
    cookie request that changes something without its CSRF token. Never reads the body."""
    state = server_state(request)
    header = request.headers.get("authorization")
    if bearer and header:
        await check_blocked(state, client_ip(request))
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise await record_failure(state, request, "use `Authorization: Bearer <key>`")
        key, why = await verify_key(state.runtime.store, token)
        if key is None:
            raise await record_failure(state, request, why)
        await touch(state, key.id)
        return Caller(Principal.of(key))
    found = await session_of(request)
    if found is None:
        return None
    principal, session = found
    checked = True
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER)
        if sent is not None or not request.headers.get("content-type", "").startswith(FORM_TYPES):
            _check_token(sent, session.csrf)
        else:
            checked = False  # in the form: read once the route parses it, bounded in size
    return Caller(principal, session, checked)


NO_KEY = (
    "this endpoint needs an API key: send `Authorization: Bearer <key>`"
    " (create one with `bosun keys create`)"
)


def caller_of(request: Request) -> Caller | None:
    return getattr(request.state, "caller", None)


async def authenticate(request: Request) -> Principal:
    """The caller the middleware found (a bearer key or a console session); 401 otherwise.
    A cookie form post is held to the CSRF token in its form here, once the form is read."""
    caller = caller_of(request)
    if caller is None:
        raise AuthFailed(NO_KEY)
    if not caller.csrf_checked and caller.session is not None:
        await check_csrf(request, caller.session)
    return caller.principal


async def session_of(request: Request) -> tuple[Principal, ConsoleSession] | None:
    """The console session the cookie names, if it is live and its key is not revoked."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    state = server_state(request)
    store = state.runtime.store
    session = await store.get_console_session(token_hash(token), now=time.time())
    if session is None:
        return None
    key = await store.get_api_key(session.key_id)
    if key is None or key.revoked_at is not None:
        return None
    request.state.csrf = session.csrf
    return Principal.of(key), session


async def check_csrf(request: Request, session: ConsoleSession) -> None:
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(FORM_TYPES):
        sent = (await request.form()).get("csrf")
    _check_token(sent, session.csrf)


def _check_token(sent: object, expected: str) -> None:
    if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise HTTPException(
            403, "missing or wrong CSRF token: reload the page and try again", headers=None
        )


def check_same_origin(request: Request) -> None:
    """403 for a browser request that changes something from another site. Browsers say
    where a request comes from (`Sec-Fetch-Site`; older ones only `Origin`); a request that
    says nothing (curl, scripts) is left to the tokens. Run for every cookie or login post."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        if site in ("same-origin", "none"):
            return
    else:
        origin = request.headers.get("origin")
        if origin is None:
            return
        host = request.headers.get("host", "")
        if origin != "null" and urlsplit(origin).netloc.lower() == host.lower():
            return
    raise HTTPException(
        403,
        "refused: this form was sent from another site. Open the console at its own address"
        " and try again",
    )


async def start_session(state: ServerState, key_id: str) -> tuple[str, ConsoleSession]:
    """A new console session for a verified key: (cookie token, session)."""
    token = secrets.token_urlsafe(32)
    now = time.time()
    session = ConsoleSession(
        token_hash=token_hash(token),
        key_id=key_id,
        csrf=secrets.token_urlsafe(24),
        created_at=now,
        expires_at=now + state.settings.session_seconds,
    )
    await state.runtime.store.create_console_session(session)
    return token, session


def require(permission: str):
    """A dependency: the caller, if its role grants `permission`; else 403."""

    async def dependency(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if not principal.can(permission):
            raise HTTPException(
                403,
                f"the {principal.role} role cannot do this: it needs the"
                f" {roles_granting(permission)} role",
            )
        return principal

    return dependency
