"""An agent's MCP servers, as data: how to reach one, and which of its tools the agent takes
with what governance. Connecting is the tools layer's job (`bosun.tools.mcp`); this module
validates what an agent file or `mcp_tools(...)` says and turns served definitions into
the agent's tools.

How a served tool is governed (docs/mcp.md):

- a **trusted** server's annotations count: `readOnlyHint: true` -> `read`; otherwise
  `write`, or `irreversible` when `destructiveHint` is true (its default);
  `idempotentHint: true` -> idempotent;
- an **untrusted** server (the default) is believed about nothing: its annotations are
  kept for display, never to loosen policy, so its tools are `irreversible`, not
  idempotent, and their output is untrusted content (the default injection rules apply);
- the operator's `effects:` (per tool, globs allowed) and `idempotent:` override both;
- sinks (`bosun.spec.sinks`) default from schema property names (`to`, `url`, `*_id`,
  `amount`...), whoever the server is; `egress:`/`targets:`/`amounts:` override them.

Secrets never enter an agent's snapshot (which is journaled): headers written as they are
must not be credentials (`Authorization` is refused); a bearer token, secret headers and
an OAuth client's id and secret are named by the environment variable that holds them,
read by the worker that connects (`auth: {oauth: ...}`: `McpOAuth`).
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
from collections.abc import Callable, Sequence
from typing import Any, Literal

import orjson
from pydantic import ConfigDict, Field, field_validator, model_validator

from bosun.errors import SpecError
from bosun.spec.definition import SourceSpec, ToolDefinition
from bosun.spec.sinks import SinkSetting, mcp_defaults, overridden, properties_of
from bosun.spec.sourced import SourcedTool, sourced_tool
from bosun.spec.tool import RetryPolicy
from bosun.spec.vocab import Effect
from bosun.spec.where import SpecModel
from bosun.spec.yaml_lines import did_you_mean

ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
# Commands that start a server named by their first argument.
_LAUNCHERS = frozenset({"uvx", "uv", "npx", "node", "bunx", "deno", "pipx"})
# What model APIs accept as a function name; other characters of a served name become "_".
_TOOL_NAME = re.compile(r"[^A-Za-z0-9_-]")


class McpOAuth(SpecModel):
    """OAuth 2.1 for a Streamable HTTP server (`auth: {oauth: {...}}`), run by the worker
    with the official SDK's client (`bosun.tools.mcp.auth`): the server's protected
    resource metadata and its authorization server's metadata are discovered from its
    first 401, a token is obtained, sent on every request, refreshed, and re-obtained
    with more scopes when the server answers 403 `insufficient_scope`.

    Two grants, both for a worker no person watches:

    - `client_credentials` (the default): a client registered with the authorization
      server, its id and secret in the worker's environment (`client_id_env`,
      `client_secret_env`);
    - `authorization_code` (with PKCE): for authorization servers that approve this
      client without a person (they answer the authorization request with a redirect at
      once, as machine-to-machine set-ups and the conformance suite's server do). The
      client is pre-registered (`client_id_env`, optionally `client_secret_env`), or
      named by a client ID metadata document (`client_metadata_url`), or registered
      dynamically when neither is given and the server allows it.

    Tokens live in the worker's memory only (never the journal, traces, logs or store).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    field_prefix = "mcp.auth.oauth"

    grant: Literal["client_credentials", "authorization_code"] = "client_credentials"
    client_id_env: str | None = Field(default=None, pattern=ENV_NAME)
    client_secret_env: str | None = Field(default=None, pattern=ENV_NAME)
    # How the token request carries the client's secret (RFC 6749 2.3.1); `none` for a
    # public client. Default: `client_secret_basic` with a secret, else `none`.
    token_endpoint_auth: Literal["client_secret_basic", "client_secret_post", "none"] | None = None
    # Scopes to ask for on top of those the server names (in its 401 or its metadata).
    scopes: list[str] = Field(default_factory=list)
    # The authorization server the client credentials belong to: when given, they are sent
    # only to it (the SDK refuses a server that leads elsewhere).
    issuer: str | None = Field(default=None, pattern=r"^https?://")
    # authorization_code only: a client ID metadata document (an https URL with a path)
    # used as the client id when the authorization server supports it, and the redirect
    # URI registered for the client (the worker reads the code from the redirect itself).
    client_metadata_url: str | None = Field(default=None, pattern=r"^https://[^/]+/.+")
    redirect_uri: str = Field(
        default="http://localhost/bosun/oauth/callback", pattern=r"^https?://"
    )
    client_name: str = "bosun"

    @field_validator("scopes")
    @classmethod
    def _scope_tokens(cls, value: list[str]) -> list[str]:
        for scope in value:
            if not scope or any(c.isspace() for c in scope):
                raise ValueError(f"{scope!r} is not one scope (list scopes one per item)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> McpOAuth:
        if self.client_secret_env and not self.client_id_env:
            raise ValueError("`client_secret_env` needs `client_id_env` (the client it belongs to)")
        if self.grant == "client_credentials":
            if not (self.client_id_env and self.client_secret_env):
                raise ValueError(
                    "`grant: client_credentials` needs `client_id_env` and `client_secret_env` "
                    "(the environment variables holding the client registered with the "
                    "authorization server); without a registered secret use "
                    "`grant: authorization_code`"
                )
            if self.client_metadata_url:
                raise ValueError("`client_metadata_url` is for `grant: authorization_code`")
            if self.token_endpoint_auth == "none":
                raise ValueError(
                    "`grant: client_credentials` authenticates the client: use "
                    "`token_endpoint_auth: client_secret_basic` or `client_secret_post`"
                )
        if self.token_endpoint_auth == "none" and self.client_secret_env:
            raise ValueError(
                "`token_endpoint_auth: none` sends no secret: drop `client_secret_env`"
            )
        if self.token_endpoint_auth in ("client_secret_basic", "client_secret_post") and not (
            self.client_secret_env
        ):
            raise ValueError(
                f"`token_endpoint_auth: {self.token_endpoint_auth}` needs `client_secret_env`"
            )
        return self

    @property
    def token_auth(self) -> str:
        """How the token request authenticates the client."""
        if self.token_endpoint_auth:
            return self.token_endpoint_auth
        return "client_secret_basic" if self.client_secret_env else "none"

    def describe(self) -> str:
        """The settings in one line for error messages (variable names, never values)."""
        parts = [f"oauth {self.grant}"]
        if self.client_id_env:
            parts.append(f"client_id_env {self.client_id_env}")
        if self.client_secret_env:
            parts.append(f"client_secret_env {self.client_secret_env}")
        if self.client_metadata_url:
            parts.append(f"client_metadata_url {self.client_metadata_url}")
        if not self.client_id_env and not self.client_metadata_url:
            parts.append("dynamic client registration")
        if self.scopes:
            parts.append("scopes " + " ".join(self.scopes))
        return ", ".join(parts)


class McpAuth(SpecModel):
    """How Bosun authenticates to a Streamable HTTP server beyond a static bearer token."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    field_prefix = "mcp.auth"

    oauth: McpOAuth


class McpServer(SpecModel):
    """One MCP server: a command over stdio, or a Streamable HTTP URL."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    field_prefix = "mcp"

    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]+$")
    # stdio: the command (looked up on PATH, then next to the Python running Bosun, so a
    # server installed in Bosun's virtualenv is found), its arguments, the names of the
    # worker's environment variables it may see (besides a minimal safe set), its folder.
    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: list[str] = Field(default_factory=list)
    cwd: str | None = None
    # Streamable HTTP: the URL, headers sent as written (never credentials), headers whose
    # value is read from an environment variable, and the variable holding a bearer token.
    url: str | None = Field(default=None, pattern=r"^https?://")
    headers: dict[str, str] = Field(default_factory=dict)
    headers_env: dict[str, str] = Field(default_factory=dict)
    bearer_token_env: str | None = Field(default=None, pattern=ENV_NAME)
    # OAuth 2.1 (`McpOAuth`): a token the worker obtains, refreshes and steps up itself.
    auth: McpAuth | None = None
    # Seconds to connect and list tools (each attempt); attempts after a failed connect,
    # with doubling backoff from `reconnect_backoff` seconds.
    connect_timeout: float = Field(default=30.0, gt=0)
    connect_attempts: int = Field(default=3, ge=1, le=10)
    reconnect_backoff: float = Field(default=0.5, ge=0)
    # The most characters of one result the model sees: longer ones are cut to a head and
    # a tail with a note of what was cut.
    max_result_chars: int = Field(default=20_000, ge=200)
    # A stdio server's stderr: discarded, or passed to the worker's stderr.
    stderr: str = Field(default="discard", pattern=r"^(discard|inherit)$")
    # `auto`: the 2026-07-28 protocol when the server speaks it (`server/discover`), else
    # the 2025-era `initialize` handshake; `legacy`: the handshake only.
    protocol: str = Field(default="auto", pattern=r"^(auto|legacy)$")

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not re.match(ENV_NAME, name):
                raise ValueError(
                    f"{name!r} is not an environment variable name; `env` lists the names of "
                    "the worker's variables the server may see (their values are never written "
                    "down)"
                )
        return value

    @field_validator("headers_env")
    @classmethod
    def _header_env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for header, name in value.items():
            if not re.match(ENV_NAME, name):
                raise ValueError(f"header {header}: {name!r} is not an environment variable name")
        return value

    @field_validator("url")
    @classmethod
    def _no_userinfo(cls, value: str | None) -> str | None:
        if value and "@" in value.split("//", 1)[-1].split("/", 1)[0]:
            raise ValueError(
                "the URL carries credentials (user:password@), which would be written into "
                "the agent's pinned version; use `bearer_token_env` or `headers_env`"
            )
        return value

    @field_validator("headers")
    @classmethod
    def _no_credentials(cls, value: dict[str, str]) -> dict[str, str]:
        for header in value:
            if header.lower() in ("authorization", "proxy-authorization", "cookie"):
                raise ValueError(
                    f"header {header} would be written into the agent's pinned version (and "
                    "the journal); name the environment variable that holds it instead: "
                    "`bearer_token_env: MY_TOKEN` or `headers_env: {" + header + ": MY_VAR}`"
                )
        return value

    @model_validator(mode="after")
    def _one_transport(self) -> McpServer:
        if (self.command is None) == (self.url is None):
            raise ValueError(
                "give either `command` (a server over stdio) or `url` (Streamable HTTP), "
                "not both or neither"
            )
        if self.url is None and (
            self.headers or self.headers_env or self.bearer_token_env or self.auth
        ):
            raise ValueError(
                "`headers`, `headers_env`, `bearer_token_env` and `auth` are for `url` servers"
            )
        if self.auth is not None and self.bearer_token_env:
            raise ValueError(
                "give either `bearer_token_env` (a token you provide) or `auth: {oauth: ...}` "
                "(a token the worker obtains), not both"
            )
        if self.auth is not None and any(h.lower() == "authorization" for h in self.headers_env):
            raise ValueError("`auth` sets the Authorization header: drop it from `headers_env`")
        if self.command is None and (self.args or self.env or self.cwd):
            raise ValueError("`args`, `env` and `cwd` are for `command` servers")
        return self

    @property
    def label(self) -> str:
        """The server's name in messages: its `name`, else its command or URL."""
        if self.name:
            return self.name
        if self.command:
            program = os.path.basename(self.command)
            if program.startswith("python") or program in _LAUNCHERS:
                # `python server.py`, `uvx mcp-server-git`: the server is the first argument
                first = next((a for a in self.args if not a.startswith("-")), None)
                return os.path.basename(first) if first else program
            return program
        return str(self.url)

    def auth_settings(self) -> str:
        """How this entry authenticates, in words for an error message (names, never values)."""
        if self.auth is not None:
            return "auth: " + self.auth.oauth.describe()
        if self.bearer_token_env:
            return f"bearer_token_env {self.bearer_token_env}"
        secret = [h for h in self.headers_env if h.lower() == "authorization"]
        if secret:
            return f"headers_env {secret[0]}: {self.headers_env[secret[0]]}"
        return "no auth (add `bearer_token_env` or `auth: {oauth: ...}` to the entry)"

    def located(self, folder: str | None) -> McpServer:
        """A relative `cwd` (and a relative command path) made absolute from the agent's
        folder; the working directory defaults to it, so `args: [server.py]` is found."""
        if folder is None or self.command is None:
            return self
        cwd = os.path.normpath(os.path.join(folder, self.cwd or "."))
        command = self.command
        if os.sep in command and not os.path.isabs(command):
            command = os.path.normpath(os.path.join(folder, command))
        return self.model_copy(update={"cwd": cwd, "command": command})


def source_spec(server: McpServer, trusted: bool) -> SourceSpec:
    """The source of a server's tools. Its identity names the server and hashes everything
    that changes what it serves or how it is reached, so two agents that declare the same
    server alike share one connection per worker, and any difference is another source."""
    config = {"server": server.model_dump(mode="json", exclude_defaults=True), "trusted": trusted}
    digest = hashlib.sha256(orjson.dumps(config, option=orjson.OPT_SORT_KEYS)).hexdigest()[:12]
    return SourceSpec("mcp", f"{server.label}#{digest}", config)


def declared_effect(annotations: dict[str, Any], trusted: bool) -> tuple[Effect, bool]:
    """(effect, idempotent) a server's annotations declare, believed only when it is
    trusted (see the module docstring)."""
    if not trusted:
        return Effect.IRREVERSIBLE, False
    idempotent = annotations.get("idempotentHint") is True
    if annotations.get("readOnlyHint") is True:
        return Effect.READ, idempotent
    if annotations.get("destructiveHint", True) is False:
        return Effect.WRITE, idempotent
    return Effect.IRREVERSIBLE, idempotent


def _matches(name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def _check_names(field: str, patterns: Sequence[str], served: Sequence[str], label: str) -> None:
    """A name without a wildcard must be a tool the server serves (a typo is an error)."""
    for pattern in patterns:
        if not any(c in pattern for c in "*?[") and pattern not in served:
            hint = did_you_mean(pattern, served, listing="it serves")
            raise SpecError(f"`{field}`: MCP server {label} serves no tool {pattern!r}{hint}")


def agent_tools(
    definitions: Sequence[ToolDefinition],
    spec: SourceSpec,
    server: McpServer,
    *,
    allow: Sequence[str] | None = None,
    deny: Sequence[str] = (),
    trusted: bool = False,
    effects: dict[str, Effect | str] | None = None,
    idempotent: bool | Sequence[str] | None = None,
    timeout: float = 30.0,
    retry: RetryPolicy | None = None,
    prefix: str = "",
    sinks: dict[str, SinkSetting] | None = None,
) -> list[SourcedTool]:
    """The agent's tools out of what a server serves: filtered by `allow`/`deny` globs,
    governed as the module docstring says. Sinks default from each schema's property
    names (`bosun.spec.sinks.mcp_defaults`); `sinks` (`{"egress": [...] or {glob: [...]}}`)
    overrides them. An idempotent tool retries once by default, so
    a call whose connection dropped is sent again after the reconnect (never a write that
    may have happened: the engine parks those)."""
    served = [d.name for d in definitions]
    effects = dict(effects or {})
    _check_names("allow", allow or (), served, server.label)
    _check_names("deny", deny, served, server.label)
    _check_names("effects", list(effects), served, server.label)
    if not isinstance(idempotent, bool | None):
        _check_names("idempotent", idempotent, served, server.label)
    tools = []
    for definition in definitions:
        if allow is not None and not _matches(definition.name, allow):
            continue
        if _matches(definition.name, deny):
            continue
        hints = (definition.served or {}).get("annotations") or {}
        effect, is_idempotent = declared_effect(hints, trusted)
        for pattern, override in effects.items():
            if fnmatch.fnmatchcase(definition.name, pattern):
                effect = Effect(override)
        if isinstance(idempotent, bool):
            is_idempotent = idempotent
        elif idempotent is not None and _matches(definition.name, idempotent):
            is_idempotent = True
        policy = retry or RetryPolicy(max_attempts=2 if is_idempotent else 1)
        declared = overridden(definition.name, mcp_defaults(definition.parameters), sinks or {})
        known = properties_of(definition.parameters)  # a list for all its tools: only its own
        declared = {f: tuple(n for n in v if n in known) for f, v in declared.items()}
        tools.append(
            sourced_tool(
                definition,
                spec,
                name=prefix + _TOOL_NAME.sub("_", definition.name),
                effect=effect,
                idempotent=is_idempotent,
                timeout=timeout,
                retry=policy,
                trusted=trusted,
                sinks=declared,
            )
        )
    if not tools:
        raise SpecError(
            f"MCP server {server.label}: `allow`/`deny` leave none of its tools "
            f"(it serves {', '.join(served) or 'none'})"
        )
    return tools


# Discovery needs a connection, which is the tools layer's job: `bosun.tools.mcp`
# registers the function that connects to a server and lists what it serves.
Discover = Callable[[SourceSpec], list[ToolDefinition]]
_DISCOVER: list[Discover] = []


def register_discoverer(discover: Discover) -> None:
    _DISCOVER[:] = [discover]


def discover(spec: SourceSpec) -> list[ToolDefinition]:
    """What the server serves now (connects, lists, disconnects)."""
    if not _DISCOVER:
        raise SpecError("MCP servers need `bosun.tools.mcp`: import bosun (or bosun.tools) first")
    return _DISCOVER[0](spec)


def mcp_tools(
    server: McpServer | dict[str, Any],
    *,
    allow: Sequence[str] | None = None,
    deny: Sequence[str] = (),
    trusted: bool = False,
    effects: dict[str, Effect | str] | None = None,
    idempotent: bool | Sequence[str] | None = None,
    timeout: float = 30.0,
    retry: RetryPolicy | dict[str, Any] | None = None,
    prefix: str = "",
    folder: str | None = None,
    egress: SinkSetting = None,
    targets: SinkSetting = None,
    amounts: SinkSetting = None,
) -> list[SourcedTool]:
    """The tools of an MCP server for an `Agent`: `Agent(tools=[*mcp_tools({"command":
    "mcp-server-time"}, effects={"*": "read"})])`. Connects once to list them; the
    worker that runs the agent opens its own connection. `egress`/`targets`/`amounts`
    override the sinks guessed from schema names: a list for every tool, or
    `{tool_glob: [names]}`."""
    if isinstance(server, dict):
        try:
            server = McpServer.model_validate(server)
        except ValueError as exc:
            raise SpecError(f"MCP server: {exc}") from None
    server = server.located(folder)
    retry = RetryPolicy(**retry) if isinstance(retry, dict) else retry
    spec = source_spec(server, trusted)
    return agent_tools(
        discover(spec),
        spec,
        server,
        allow=allow,
        deny=deny,
        trusted=trusted,
        effects=effects,
        idempotent=idempotent,
        timeout=timeout,
        retry=retry,
        prefix=prefix,
        sinks={"egress": egress, "targets": targets, "amounts": amounts},
    )


__all__ = [
    "McpAuth",
    "McpOAuth",
    "McpServer",
    "agent_tools",
    "declared_effect",
    "discover",
    "mcp_tools",
    "register_discoverer",
    "source_spec",
]
