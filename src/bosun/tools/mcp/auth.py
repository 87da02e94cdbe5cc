"""Authenticating to a Streamable HTTP MCP server: OAuth on the official SDK's client, and
errors that say what the server refused and how the entry authenticates.

An entry's `auth: {oauth: ...}` (`bosun.spec.mcp.McpOAuth`) becomes one of the SDK's
`httpx2.Auth` providers, given to the connection's HTTP client: the SDK discovers the
server's protected resource metadata and its authorization server's metadata from the
first 401, registers (dynamic registration or a client ID metadata document) or uses the
pre-registered client, gets a token, refreshes it, and asks again with the union of
scopes when the server answers 403 `insufficient_scope`. What Bosun adds:

- the client's id and secret are read here from the worker's environment (their names
  are all the agent version holds);
- tokens and the client's registration live in `MemoryTokens`, in the memory of the
  process only (never the journal, a trace, a log line or the store): one per server
  entry (`tokens_for`, by the source's identity, which hashes the server's settings), so
  loading the agent, the worker's connection and its reconnects share one registration
  and one token. A process that restarts asks for a token again;
- `authorization_code` without a person (`HeadlessRedirect`): the worker sends the
  authorization request itself and reads the code from the redirect the server answers
  with at once; a server that shows a login page instead is an error saying so;
- `scopes:` are asked for on top of the ones the server names (`_bosun`), which also keeps the
  exception that stopped the flow for the error message;
- `Refusals` remembers the last HTTP status the MCP endpoint refused a request with, so
  a 401 or 403 reads "HTTP 401 Unauthorized ... the entry's auth: ..." instead of the
  SDK's "Server returned an error response".
"""

from __future__ import annotations

import os
import threading
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bosun.errors import SourceUnavailable
from bosun.spec.mcp import McpOAuth, McpServer


class McpUnauthorized(PermissionError):
    """An MCP server refused a request for its credentials (HTTP 401 or 403), or OAuth could
    not get a token: the message names the status and how the entry authenticates (names
    of variables, never values). A tool error (its type names it), as `McpToolError` is."""


def secret(var: str, what: str, label: str) -> str:
    """The value of an environment variable holding a secret, or a clear error."""
    value = os.environ.get(var)
    if not value:
        raise SourceUnavailable(
            f"MCP server {label}: environment variable {var} ({what}) is not set in this "
            "worker; set it where the worker runs"
        )
    return value


class MemoryTokens:
    """The SDK's `TokenStorage`, in memory: one per server entry in a process."""

    def __init__(self) -> None:
        self._tokens: Any = None
        self._client: Any = None

    async def get_tokens(self) -> Any:
        return self._tokens

    async def set_tokens(self, tokens: Any) -> None:
        self._tokens = tokens

    async def get_client_info(self) -> Any:
        return self._client

    async def set_client_info(self, client_info: Any) -> None:
        self._client = client_info

    def preregister(self, client_info: Any) -> None:
        """The client registered beforehand (no registration request), unless the flow
        already holds one."""
        if self._client is None:
            self._client = client_info


_TOKENS: dict[tuple[str, str], MemoryTokens] = {}
_TOKENS_LOCK = threading.Lock()  # agents load on threads of their own (`discover_now`)


def tokens_for(key: tuple[str, str]) -> MemoryTokens:
    """The token storage of one server entry (a source's `spec.key`) in this process. A
    cache of credentials, not configuration: two Runtimes in a process that declare the
    same server with the same settings hold the same client, so they share its token."""
    with _TOKENS_LOCK:
        return _TOKENS.setdefault(key, MemoryTokens())


class HeadlessRedirect:
    """The authorization-code grant's redirect, completed by the worker: it requests the
    authorization URL (no redirect followed) and takes `code`, `state` and `iss` from the
    `Location` the server answers with. The code is kept only until the SDK asks for it."""

    def __init__(self, label: str, timeout: float):
        self.label = label
        self.timeout = timeout
        self._result: Any = None

    async def redirect(self, authorization_url: str) -> None:
        import httpx2

        async with httpx2.AsyncClient(timeout=self.timeout) as http:
            response = await http.get(authorization_url, follow_redirects=False)
        location = response.headers.get("location") if response.is_redirect else None
        query = parse_qs(urlsplit(location).query) if location else {}
        if "code" not in query:
            what = (
                f"redirected without a code ({_error_of(query)})"
                if location
                else f"answered {_status(response.status_code)} (a login page?)"
            )
            raise McpUnauthorized(
                f"MCP server {self.label}: the authorization server {what} to the worker's "
                "authorization request; a worker cannot log a person in, so `grant: "
                "authorization_code` needs an authorization server that approves this client "
                "at once. Use `grant: client_credentials` with a registered client otherwise"
            )
        from mcp.client.auth import AuthorizationCodeResult

        self._result = AuthorizationCodeResult(
            code=query["code"][0],
            state=(query.get("state") or [None])[0],
            iss=(query.get("iss") or [None])[0],
        )

    async def callback(self) -> Any:
        result, self._result = self._result, None
        if result is None:
            raise McpUnauthorized(f"MCP server {self.label}: no authorization code was received")
        return result


def _error_of(query: dict[str, list[str]]) -> str:
    error = (query.get("error") or ["no error named"])[0]
    detail = (query.get("error_description") or [""])[0]
    return f"error {error}" + (f": {detail}" if detail else "")


def _status(code: int) -> str:
    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:
        return str(code)


def _bosun(base: type, scopes: str, issuer: str | None, label: str) -> type:
    """`base` (an SDK provider) that asks for `scopes` on top of the server's (the SDK sets
    the scope from the server's challenge just before it authorizes, so they are added
    there), authorizes only with the entry's `issuer` when it names one (for both grants:
    the SDK's own check covers client credentials only), and keeps the exception that
    stopped its flow in `failure`: the transport only logs it, and the connection's error
    message needs it."""
    from mcp.client.auth.utils import issuers_match, union_scopes

    class Provider(base):  # type: ignore[misc, valid-type]
        failure: BaseException | None = None

        async def _perform_authorization(self) -> Any:
            if issuer is not None:
                found = self.context.oauth_metadata
                if found is None or not issuers_match(str(found.issuer), issuer):
                    raise McpUnauthorized(
                        f"MCP server {label} sends its clients to authorization server "
                        f"{found.issuer if found else '(none found)'}, not the entry's issuer "
                        f"{issuer}: the client's credentials were not sent"
                    )
            if scopes:
                metadata = self.context.client_metadata
                metadata.scope = union_scopes(metadata.scope, scopes)
            return await super()._perform_authorization()

        async def async_auth_flow(self, request: Any) -> Any:
            flow = super().async_auth_flow(request)
            try:
                outgoing = await flow.__anext__()
                while True:
                    response = yield outgoing
                    outgoing = await flow.asend(response)
            except StopAsyncIteration:
                return
            except Exception as exc:
                self.failure = exc
                raise

    Provider.__name__ = Provider.__qualname__ = f"Bosun{base.__name__}"
    return Provider


def oauth_provider(server: McpServer, storage: MemoryTokens) -> Any:
    """The SDK's OAuth provider for an entry's `auth: {oauth: ...}` (reads its secrets)."""
    assert server.auth is not None and server.url is not None
    oauth: McpOAuth = server.auth.oauth
    label = server.label
    client_id = (
        secret(oauth.client_id_env, "the OAuth client id", label) if oauth.client_id_env else None
    )
    client_secret = (
        secret(oauth.client_secret_env, "the OAuth client secret", label)
        if oauth.client_secret_env
        else None
    )
    scopes = " ".join(oauth.scopes)
    if oauth.grant == "client_credentials":
        from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider

        assert client_id and client_secret
        return _bosun(ClientCredentialsOAuthProvider, scopes, oauth.issuer, label)(
            server_url=server.url,
            storage=storage,
            client_id=client_id,
            client_secret=client_secret,
            token_endpoint_auth_method=oauth.token_auth,
            scope=scopes or None,
            issuer=oauth.issuer,
        )

    from mcp.client.auth import OAuthClientProvider
    from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata
    from pydantic import AnyUrl

    redirect = HeadlessRedirect(label, server.connect_timeout)
    redirect_uris = [AnyUrl(oauth.redirect_uri)]
    if client_id is not None:  # pre-registered: no registration request
        storage.preregister(
            OAuthClientInformationFull(
                client_id=client_id,
                client_secret=client_secret,
                redirect_uris=redirect_uris,
                token_endpoint_auth_method=oauth.token_auth,  # type: ignore[arg-type]
            )
        )
    return _bosun(OAuthClientProvider, scopes, oauth.issuer, label)(
        server_url=server.url,
        client_metadata=OAuthClientMetadata(
            client_name=oauth.client_name,
            redirect_uris=redirect_uris,
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method=oauth.token_auth,  # type: ignore[arg-type]
            scope=scopes or None,
        ),
        storage=storage,
        redirect_handler=redirect.redirect,
        callback_handler=redirect.callback,
        client_metadata_url=oauth.client_metadata_url,
    )


class Refusals:
    """The last refusal (HTTP status >= 400) of a request to the MCP endpoint itself, from
    an `httpx2` response hook; a later success clears it. The OAuth flow's own requests
    (metadata, registration, token) go elsewhere and are not recorded."""

    def __init__(self, server: McpServer):
        self.server = server
        self.path = urlsplit(str(server.url)).path or "/"
        self.last: tuple[int, str] | None = None

    async def hook(self, response: Any) -> None:
        if (response.request.url.path or "/") != self.path:
            return
        if response.status_code >= 400:
            self.last = (response.status_code, response.headers.get("www-authenticate", ""))
        elif response.status_code < 300:
            self.last = None

    def explain(self) -> str | None:
        """The refusal in words, with the entry's auth settings; None if there was none
        (or it was not about credentials)."""
        if self.last is None or self.last[0] not in (401, 403):
            return None
        status, challenge = self.last
        text = f"MCP server {self.server.label} answered HTTP {_status(status)}"
        if challenge:
            text += f" (WWW-Authenticate: {challenge[:300]})"
        text += f"; the entry's auth: {self.server.auth_settings()}"
        if (
            status == 401
            and self.server.auth is None
            and (self.server.bearer_token_env or self.server.headers_env)
        ):
            text += " (the server did not accept that credential: check its value)"
        elif status == 401 and self.server.auth is not None:
            text += " (the token the worker obtained was refused)"
        return text


__all__ = [
    "HeadlessRedirect",
    "McpUnauthorized",
    "MemoryTokens",
    "Refusals",
    "oauth_provider",
    "secret",
    "tokens_for",
]
