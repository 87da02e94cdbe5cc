"""proxy.yaml: the upstream servers, the governance and the sessions of `bosun mcp proxy`.

A proxy is governed as an agent is, with the same words: `servers:` entries are an agent
file's `mcp:` tool entries (stdio `command`/`args`/`env`, or Streamable HTTP `url`/
`headers`/`bearer_token_env`; `allow`/`deny` globs, `trusted`, `effects`, `prefix`), and
`policy`, `autonomy`, `tool_autonomy`, `limits` and `rate_limits` mean what they mean in an
agent file. So the proxy *is* an agent (named after the proxy) whose model is the MCP
client: `load_proxy` builds that agent through the agent loader's own `mcp:` path, which
lists each server once and pins every tool it takes (the rug-pull defence comes with it).

Proxy-only keys: `db`, the stdio identity (`tenant`, `user`), `approval_timeout` (how long
a call waits for a person), `idle_timeout` (a session's run ends after this long without a
call). Limits default to none per session except those you set: one client call is one
step of the run, and a desktop client repeats calls freely.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bosun.errors import BosunError, SpecError
from bosun.server.mcp_proxy.model import CLIENT_PROVIDER, MODEL
from bosun.spec import yaml_lines
from bosun.spec.agent import Agent, check_name
from bosun.spec.limits import Limits, RateLimit
from bosun.spec.loader import ToolEntry, mcp_entry_tools
from bosun.spec.vocab import Autonomy

# A session's run counts every client call as a step; only limits the file sets apply.
NO_LIMITS = Limits(max_steps=None, max_wall_seconds=None, max_tool_calls=None, max_repeats=None)


class ProxyFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = "mcp-proxy"
    version: str = "1"
    servers: list[ToolEntry] = Field(min_length=1)
    policy: str | dict[str, Any] | None = None  # a policy YAML path (relative) or inline
    autonomy: Autonomy = Autonomy.AUTO
    tool_autonomy: dict[str, Autonomy] = Field(default_factory=dict)
    limits: dict[str, Any] = Field(default_factory=dict)
    rate_limits: list[RateLimit] = Field(default_factory=list)
    db: str | None = None
    tenant: str = "default"
    user: str | None = None
    approval_timeout: float = Field(default=300.0, gt=0)
    idle_timeout: float = Field(default=900.0, gt=0)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        problem = check_name(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("servers")
    @classmethod
    def _mcp_only(cls, value: list[ToolEntry]) -> list[ToolEntry]:
        for entry in value:
            if entry.mcp is None:
                raise ValueError("each server is an `mcp:` entry (the same as an agent file's)")
        return value


@dataclass(frozen=True)
class Proxy:
    """A loaded proxy: its agent (tools pinned) and its session settings."""

    agent: Agent
    file: ProxyFile
    path: str


def _limits(values: dict[str, Any], what: str) -> Limits:
    try:
        return NO_LIMITS.model_copy(
            update=Limits.model_validate(values).model_dump(exclude_unset=True)
        )
    except ValidationError as exc:
        raise SpecError(f"{what}: `limits`: {exc.errors()[0]['msg']}") from None


def load_proxy(path: str) -> Proxy:
    """The proxy file at `path` as a `Proxy`; connects to each server once to list its tools."""
    what = f"proxy file {path}"
    text = yaml_lines.read_file(path, what)
    data, lines = yaml_lines.load(text, what)
    if not isinstance(data, dict):
        raise SpecError(f"{what}, line 1: expected a mapping with at least `servers`")
    try:
        spec = ProxyFile.model_validate(data)
    except ValidationError as exc:
        raise yaml_lines.validation_error(
            exc, what, lines, model=ProxyFile, plain_value_errors=True
        ) from None
    folder = os.path.dirname(os.path.abspath(path))
    tools = []
    served_by: dict[str, str] = {}
    for i, entry in enumerate(spec.servers):
        assert entry.mcp is not None
        label = entry.mcp.label
        try:
            found = mcp_entry_tools(entry, folder)
        except BosunError as exc:
            line = yaml_lines.line_for(("servers", i), lines)
            raise SpecError(f"{what}, line {line}: `servers[{i}]`: {exc}") from None
        for tool in found:
            other = served_by.get(tool.name)
            if other is not None:
                raise SpecError(
                    f"{what}: servers {other} and {label} both serve a tool named {tool.name!r};"
                    f" give one of them a `prefix:` (e.g. `prefix: {label.replace('.', '_')}_`)"
                    " so the client can tell them apart"
                )
            served_by[tool.name] = label
        tools.extend(found)
    policy = spec.policy
    if isinstance(policy, str):
        policy = os.path.normpath(os.path.join(folder, policy))
    agent = Agent(
        name=spec.name,
        version=spec.version,
        instructions=f"The MCP client of `bosun mcp proxy` {spec.name}: each of its calls is a step.",
        model={"provider": CLIENT_PROVIDER, "name": MODEL},
        tools=tools,
        limits=_limits(spec.limits, what),
        source=os.path.abspath(path),
        policy=policy,
        autonomy=spec.autonomy,
        tool_autonomy=dict(spec.tool_autonomy),
        rate_limits=spec.rate_limits,
    )
    return Proxy(agent=agent, file=spec, path=os.path.abspath(path))


__all__ = ["Proxy", "ProxyFile", "load_proxy"]
