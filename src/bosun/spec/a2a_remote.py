"""A remote A2A agent as data: where its agent card is, which credentials the worker sends,
and how the agent's tools (one per skill the card lists) are governed. Connecting is the
tools layer's job (`bosun.tools.a2a`); this module validates what an agent file or
`a2a_tools(...)` says and turns the skills a card serves into the agent's tools.

How a remote agent's tools are governed (docs/a2a.md, "Client"):

- **effect** `write` by default, as the operator may declare otherwise (`effect:` for all,
  `effects:` per skill). A message to another agent starts work we cannot see: it may act
  on its own systems, so it is never `read` by default (which observe mode and the
  injection rules would let through unchecked); `irreversible` would make every call need a
  person under the default policy, although most remote agents answer questions. An
  operator who knows the remote agent pays or deletes says `effect: irreversible`;
- **not idempotent**: a call interrupted between the send and its journaled task id parks
  the run (`needs_attention`) instead of sending the message again;
- **untrusted output** by default (`trusted: false`): the remote agent's answer is content
  from outside, subject to the injection rules like an untrusted MCP server's.

Secrets never enter an agent's snapshot (which is journaled): the entry names the
environment variables that hold them (`token_env`, or `credentials:` per security scheme
the card declares), read by the worker that connects.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from pydantic import ConfigDict, Field, field_validator

from bosun.errors import SpecError
from bosun.spec.definition import SourceSpec, ToolDefinition
from bosun.spec.sourced import SourcedTool, sourced_tool
from bosun.spec.tool import RetryPolicy
from bosun.spec.vocab import Effect
from bosun.spec.where import SpecModel
from bosun.spec.yaml_lines import did_you_mean

KIND = "a2a"
# A remote wait's key for an A2A task: `a2a:<source tag>:<remote task id>` (the tag is the
# digest ending the source's identity, so the watcher finds the source that serves the
# task among the run's pinned tools; the watcher in every worker looks for this prefix).
KEY_PREFIX = "a2a:"
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
_TOOL_NAME = re.compile(r"[^A-Za-z0-9_-]")

# The arguments every A2A tool takes: what to tell the remote agent, and (to answer a
# remote agent that asked for input) the task that asked.
PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "message": {"type": "string", "description": "What to ask or tell the remote agent."},
        "task_id": {
            "type": "string",
            "description": "Only to answer a task of this agent that asked for input "
            "(status input-required): its task_id.",
        },
    },
    "required": ["message"],
    "additionalProperties": False,
}


class A2aAgent(SpecModel):
    """One remote A2A agent: its agent card's URL and how the worker authenticates."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    field_prefix = "a2a"

    card: str = Field(pattern=r"^https?://")
    # The variable holding the credential for every security scheme the card declares
    # (a bearer token or an API key: the card says how it is sent), or one per scheme.
    token_env: str | None = Field(default=None, pattern=ENV_NAME)
    credentials: dict[str, str] = Field(default_factory=dict)
    # Seconds to fetch the card and to send one request.
    connect_timeout: float = Field(default=30.0, gt=0)
    # Seconds a remote task may take before the call fails (`remote_timeout`) and the task
    # is cancelled on the remote.
    task_timeout: float = Field(default=3600.0, gt=0)
    # Seconds between two looks at a running remote task by the worker that watches it.
    poll_interval: float = Field(default=1.0, gt=0, le=300)
    # The most characters of one result the model sees.
    max_result_chars: int = Field(default=20_000, ge=200)

    @field_validator("card")
    @classmethod
    def _no_userinfo(cls, value: str) -> str:
        if "@" in value.split("//", 1)[-1].split("/", 1)[0]:
            raise ValueError(
                "the URL carries credentials (user:password@), which would be written into "
                "the agent's pinned version; use `token_env` or `credentials`"
            )
        return value

    @field_validator("credentials")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for scheme, name in value.items():
            if not re.match(ENV_NAME, name):
                raise ValueError(
                    f"scheme {scheme}: {name!r} is not an environment variable name (the "
                    "entry names the variable holding the credential, never the credential)"
                )
        return value

    @property
    def card_url(self) -> str:
        """The card's URL: a bare base URL means its well-known path."""
        url = self.card.rstrip("/")
        if url.count("/") <= 2:  # scheme://host[:port]
            return url + "/.well-known/agent-card.json"
        return self.card


def source_spec(agent: A2aAgent, trusted: bool) -> SourceSpec:
    """The source of a remote agent's tools. Its identity names the card and hashes every
    setting, so two entries alike share one client per worker."""
    config = {"agent": agent.model_dump(mode="json", exclude_defaults=True), "trusted": trusted}
    config["agent"]["card"] = agent.card
    digest = hashlib.sha256(orjson.dumps(config, option=orjson.OPT_SORT_KEYS)).hexdigest()[:12]
    return SourceSpec(KIND, f"{agent.card_url}#{digest}", config)


def _matches(name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def agent_tools(
    definitions: Sequence[ToolDefinition],
    spec: SourceSpec,
    *,
    allow: Sequence[str] | None = None,
    trusted: bool = False,
    effect: Effect | str | None = None,
    effects: dict[str, Effect | str] | None = None,
    timeout: float = 30.0,
    prefix: str = "",
) -> list[SourcedTool]:
    """The agent's tools out of the skills a card serves (tool names are the skills' ids),
    governed as the module docstring says."""
    served = [d.name for d in definitions]
    effects = dict(effects or {})
    for field, names in (("allow", allow or ()), ("effects", list(effects))):
        for pattern in names:
            if not any(c in pattern for c in "*?[") and pattern not in served:
                hint = did_you_mean(pattern, served, listing="its card lists")
                raise SpecError(f"`{field}`: the A2A agent has no skill {pattern!r}{hint}")
    tools = []
    for definition in definitions:
        if allow is not None and not _matches(definition.name, allow):
            continue
        chosen = Effect(effect) if effect is not None else Effect.WRITE
        for pattern, override in effects.items():
            if fnmatch.fnmatchcase(definition.name, pattern):
                chosen = Effect(override)
        tools.append(
            sourced_tool(
                definition,
                spec,
                name=prefix + _TOOL_NAME.sub("_", definition.name),
                effect=chosen,
                idempotent=False,
                timeout=timeout,
                retry=RetryPolicy(max_attempts=1),
                trusted=trusted,
            )
        )
    if not tools:
        raise SpecError(
            f"A2A agent {spec.identity.split('#')[0]}: `allow` leaves none of its skills "
            f"(its card lists {', '.join(served) or 'none'})"
        )
    return tools


# Discovery needs a connection, which is the tools layer's job: `bosun.tools.a2a`
# registers the function that fetches a card and lists its skills.
Discover = Callable[[SourceSpec], list[ToolDefinition]]
_DISCOVER: list[Discover] = []


def register_discoverer(discover: Discover) -> None:
    _DISCOVER[:] = [discover]


def discover(spec: SourceSpec) -> list[ToolDefinition]:
    if not _DISCOVER:
        raise SpecError("A2A agents need `bosun.tools.a2a`: import bosun (or bosun.tools) first")
    return _DISCOVER[0](spec)


def a2a_tools(
    agent: A2aAgent | dict[str, Any] | str,
    *,
    allow: Sequence[str] | None = None,
    trusted: bool = False,
    effect: Effect | str | None = None,
    effects: dict[str, Effect | str] | None = None,
    timeout: float = 30.0,
    prefix: str = "",
) -> list[SourcedTool]:
    """The tools of a remote A2A agent for an `Agent`, one per skill of its card:
    `Agent(tools=[*a2a_tools("https://agents.example", token_env="BILLING_TOKEN")])` takes
    `token_env=` through a dict: `a2a_tools({"card": URL, "token_env": "X"})`. Fetches the
    card once to list them; the worker that runs the agent opens its own client."""
    if isinstance(agent, str):
        agent = {"card": agent}
    if isinstance(agent, dict):
        try:
            agent = A2aAgent.model_validate(agent)
        except ValueError as exc:
            raise SpecError(f"A2A agent: {exc}") from None
    spec = source_spec(agent, trusted)
    return agent_tools(
        discover(spec),
        spec,
        allow=allow,
        trusted=trusted,
        effect=effect,
        effects=effects,
        timeout=timeout,
        prefix=prefix,
    )


def source_tag(spec: SourceSpec) -> str:
    """The short, unique name of a source in wait keys: the digest ending its identity."""
    return spec.identity.rpartition("#")[2]


def wait_key(spec: SourceSpec, task_id: str) -> str:
    return f"{KEY_PREFIX}{source_tag(spec)}:{task_id}"


def parse_key(key: str) -> tuple[str, str] | None:
    """(source tag, task id) of an A2A wait's key, or None for another kind's key."""
    if not key.startswith(KEY_PREFIX):
        return None
    tag, sep, task = key[len(KEY_PREFIX) :].partition(":")
    return (tag, task) if sep and tag and task else None


__all__ = [
    "KEY_PREFIX",
    "KIND",
    "PARAMETERS",
    "A2aAgent",
    "a2a_tools",
    "agent_tools",
    "discover",
    "parse_key",
    "register_discoverer",
    "source_spec",
    "source_tag",
    "wait_key",
]
