"""Authentication for the API and the console: bearer keys, console sessions, CSRF, and
rate-limited, audited failures.

A request authenticates with `Authorization: Bearer bosun_<id>_<secret>` (API clients,
Prometheus) or with the console's session cookie. A cookie-authenticated request that
changes anything must also carry the session's CSRF token (`X-CSRF-Token` header or a
`csrf` form field): another site can make the browser send the cookie, never the token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from bosun.journal.audit import AuditEntry
from bosun.server.keys import Principal, roles_granting, verify_key
from bosun.server.state import ServerState, server_state
from bosun.store.base import ConsoleSession

SESSION_COOKIE = "bosun_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_TOUCH_EVERY = 60.0  # seconds between `last_used_at` writes for one key


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


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
    ip = client_ip(request)
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
                    request.url.path,
                    {"reason": why, "method": request.method},
                )
            ]
        )
        return AuthFailed(f"authentication failed: {why}")
    if ip not in state.blocked:
        await store.append_audit(
            [AuditEntry(now, f"ip:{ip}", "auth_rate_limited", request.url.path, {"limit": limit})]
        )
    state.blocked[ip] = (now // 60 + 1) * 60
    return AuthFailed(
        f"too many failed authentication attempts from this address (over {limit} a minute);"
        " try again in a minute",
        429,
    )


async def _touch(state: ServerState, key_id: str) -> None:
    now = time.time()
    if now - state.touched.get(key_id, 0.0) > _TOUCH_EVERY:
        state.touched[key_id] = now
        await state.runtime.store.touch_api_key(key_id, now=now)


async def authenticate(request: Request) -> Principal:
    """The caller, from a bearer key or a console session; 401/403/429 otherwise."""
    state = server_state(request)
    header = request.headers.get("authorization")
    if header:
        await check_blocked(state, client_ip(request))
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise await record_failure(state, request, "use `Authorization: Bearer <key>`")
        key, why = await verify_key(state.runtime.store, token)
        if key is None:
            raise await record_failure(state, request, why)
        await _touch(state, key.id)
        return Principal.of(key)
    session_principal = await session_of(request)
    if session_principal is not None:
        principal, session = session_principal
        if request.method not in SAFE_METHODS:
            await check_csrf(request, session)
        return principal
    raise AuthFailed(
        "this endpoint needs an API key: send `Authorization: Bearer <key>`"
        " (create one with `bosun keys create`)"
    )


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
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        sent = (await request.form()).get("csrf")
    if not isinstance(sent, str) or not hmac.compare_digest(sent, session.csrf):
        raise HTTPException(
            403, "missing or wrong CSRF token: reload the page and try again", headers=None
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
