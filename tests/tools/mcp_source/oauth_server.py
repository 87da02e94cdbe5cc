"""A real MCP server behind OAuth, for the MCP client's OAuth tests: the SDK's own
resource-server side (protected resource metadata, bearer checks, 401 with
`WWW-Authenticate`, `required_scopes`) and, on the same port, a small authorization server
(metadata, `/authorize` that approves at once, `/token` for `client_credentials` and
`authorization_code` with PKCE). Nothing of MCP or OAuth is mocked on the client's side.

    OAUTH_CLIENT_ID=... OAUTH_CLIENT_SECRET=... python oauth_server.py PORT

- `OAUTH_LOG`: a file getting one JSON line per token request (grant, scope, how the
  client authenticated, and the access token issued, so a test can look for it where
  it must never appear);
- `OAUTH_LOGIN_PAGE=1`: `/authorize` answers 200 with a login page (a person would be
  needed), as an interactive authorization server does.

Tools: `whoami()` answers the scopes of the token the request carried; `echo(text)`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import sys
from urllib.parse import urlencode

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

PORT = int(sys.argv[1])
BASE = f"http://127.0.0.1:{PORT}"
CLIENT_ID = os.environ["OAUTH_CLIENT_ID"]
CLIENT_SECRET = os.environ["OAUTH_CLIENT_SECRET"]
TOKENS: dict[str, list[str]] = {}  # access token -> scopes
CODES: dict[str, tuple[str, str]] = {}  # code -> (PKCE challenge, scope)
READ = ToolAnnotations(readOnlyHint=True, idempotentHint=True)


class Verifier:
    async def verify_token(self, token: str) -> AccessToken | None:
        scopes = TOKENS.get(token)
        if scopes is None:
            return None
        return AccessToken(token=token, client_id=CLIENT_ID, scopes=scopes)


server = MCPServer(
    "bosun-oauth",
    token_verifier=Verifier(),
    auth=AuthSettings(
        issuer_url=BASE,
        resource_server_url=f"{BASE}/mcp",
        required_scopes=["tools"],
        validate_token_resource=False,
    ),
)


@server.tool(annotations=READ)
def whoami() -> str:
    """The scopes of the token this request carried."""
    token = get_access_token()
    return " ".join(sorted(token.scopes)) if token else "anonymous"


@server.tool(annotations=READ)
def echo(text: str) -> str:
    """Echo the text back."""
    return text


def _log(entry: dict[str, object]) -> None:
    path = os.environ.get("OAUTH_LOG")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(entry) + "\n")


@server.custom_route("/.well-known/oauth-authorization-server", methods=["GET"])
async def metadata(request: Request) -> Response:
    return JSONResponse(
        {
            "issuer": BASE,
            "authorization_endpoint": f"{BASE}/authorize",
            "token_endpoint": f"{BASE}/token",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "client_credentials"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": ["tools", "admin"],
        }
    )


@server.custom_route("/authorize", methods=["GET"])
async def authorize(request: Request) -> Response:
    q = request.query_params
    if os.environ.get("OAUTH_LOGIN_PAGE"):
        return HTMLResponse("<form>Sign in</form>")
    if q.get("client_id") != CLIENT_ID or q.get("code_challenge_method") != "S256":
        query = urlencode({"error": "unauthorized_client", "state": q.get("state", "")})
        return RedirectResponse(f"{q.get('redirect_uri')}?{query}", status_code=302)
    code = secrets.token_urlsafe(16)
    CODES[code] = (q["code_challenge"], q.get("scope", ""))
    query = urlencode({"code": code, "state": q.get("state", ""), "iss": BASE})
    return RedirectResponse(f"{q['redirect_uri']}?{query}", status_code=302)


def _client(request: Request, form: dict[str, str]) -> str | None:
    """How the client authenticated ("basic" / "post"), or None if it did not."""
    header = request.headers.get("authorization", "")
    if header.startswith("Basic "):
        given = base64.b64decode(header[6:]).decode()
        return "basic" if given == f"{CLIENT_ID}:{CLIENT_SECRET}" else None
    if form.get("client_id") == CLIENT_ID and form.get("client_secret") == CLIENT_SECRET:
        return "post"
    return None


@server.custom_route("/token", methods=["POST"])
async def token(request: Request) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items()}
    grant = form.get("grant_type")
    how = _client(request, form)
    scope = form.get("scope", "")
    _log({"grant": grant, "scope": scope, "client_auth": how})
    if how is None:
        return JSONResponse({"error": "invalid_client"}, status_code=401)
    if grant == "authorization_code":
        challenge, scope = CODES.pop(form.get("code", ""), ("", ""))
        verifier = form.get("code_verifier", "").encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=").decode()
        if not challenge or digest != challenge:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
    elif grant != "client_credentials":
        return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
    access = secrets.token_urlsafe(24)
    TOKENS[access] = scope.split()
    _log({"issued": access})
    return JSONResponse(
        {"access_token": access, "token_type": "Bearer", "expires_in": 3600, "scope": scope}
    )


if __name__ == "__main__":
    server.run(transport="streamable-http", host="127.0.0.1", port=PORT)
