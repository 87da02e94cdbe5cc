"""What every HTTP request to `bosun mcp serve` passes before the MCP transport sees it.

1. DNS rebinding: a web page the user visits can make the browser send requests to a
   server on localhost under the attacker's host name. The `Host` header (and `Origin`,
   when sent) must name this server: loopback names, the address it is bound to, and any
   `--allow-host`. Anything else is refused (421 for Host, 403 for Origin) before a key is
   even looked at.
2. Credentials: `Authorization: Bearer bosun_<id>_<secret>`, a Bosun API key checked with
   `bosun.server.keys.verify_key` (revoked keys fail). Without a valid one: 401 with
   `WWW-Authenticate: Bearer`. Failures count against the client's address and are audited
   exactly as the API's are (`bosun.server.auth.count_failure`, the same counter: 429 past
   the limit); a used key's `last_used_at` is kept. The verified `Principal` is left in the
   ASGI scope's state for `BosunMCPServer.principal_of`. Conformance-fixtures mode takes no credentials (the
   suite sends none), which is why it binds only to loopback (see `serve.py`).

The reason a key failed ("unknown key ...", "wrong secret ...") goes to the audit trail and
the answer, never the token itself.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from bosun.server.auth import AuthFailed, check_blocked, count_failure, touch
from bosun.server.keys import Principal, verify_key
from bosun.server.mcp_serve.server import PRINCIPAL_KEY
from bosun.server.state import ServerState

log = logging.getLogger("bosun.mcp.serve")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
NO_KEY = (
    "send a Bosun API key: Authorization: Bearer bosun_<id>_<secret>"
    " (create one with `bosun keys create`)"
)


def allowed_hosts(bound: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """Host names (without port) a request may name: loopback, the bound host, `extra`."""
    names = {*LOOPBACK, *(h.strip().lower() for h in extra if h.strip())}
    if bound not in ("0.0.0.0", "::", ""):
        names.add(bound.lower())
    return frozenset(names)


def _host_name(value: str) -> str:
    """`example.com:8080` -> `example.com`; `[::1]:80` -> `::1` (lower case)."""
    return (urlsplit(f"//{value}").hostname or "").lower()


class Guard:
    """The ASGI middleware of `bosun mcp serve --http`: Host/Origin, then the bearer key."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        state: ServerState,
        hosts: frozenset[str],
        credentials: bool = True,
    ) -> None:
        self.app = app
        self.state = state
        self.hosts = hosts
        self.credentials = credentials

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        if _host_name(host) not in self.hosts:
            await self._refuse(scope, receive, send, 421, f"Host {host!r} is not this server")
            return
        origin = headers.get("origin")
        if origin is not None and (urlsplit(origin).hostname or "").lower() not in self.hosts:
            await self._refuse(scope, receive, send, 403, f"Origin {origin!r} is not allowed")
            return
        if self.credentials:
            try:
                principal = await self._principal(scope, headers.get("authorization"))
            except AuthFailed as failed:
                extra = {"WWW-Authenticate": 'Bearer realm="bosun"'}
                await self._refuse(
                    scope, receive, send, failed.status_code, str(failed.detail), extra
                )
                return
            scope.setdefault("state", {})[PRINCIPAL_KEY] = principal
        await self.app(scope, receive, send)

    async def _principal(self, scope: Scope, authorization: str | None) -> Principal:
        """The key's principal; raises `AuthFailed` (401, or 429 when over the limit)."""
        if not authorization:  # not a guess: nothing to count
            raise AuthFailed(NO_KEY)
        ip = scope["client"][0] if scope.get("client") else "unknown"
        await check_blocked(self.state, ip)
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            why = "use `Authorization: Bearer <key>`"
        else:
            key, why = await verify_key(self.state.runtime.store, token.strip())
            if key is not None:
                await touch(self.state, key.id)
                return Principal.of(key)
        log.info("MCP request refused: %s", why)
        raise await count_failure(self.state, ip, scope.get("path", ""), scope["method"], why)

    @staticmethod
    async def _refuse(
        scope: Scope,
        receive: Receive,
        send: Send,
        status: int,
        detail: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        body = {"jsonrpc": "2.0", "id": None, "error": {"code": -32001, "message": detail}}
        await JSONResponse(body, status_code=status, headers=headers)(scope, receive, send)
