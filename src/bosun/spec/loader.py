"""Load agents from YAML files, Python files or `module:attr` references.

YAML errors name the file, the line and the field (see `bosun.spec.yaml_lines`):
the document is composed with PyYAML (which keeps each node's position),
validated with pydantic, and each validation error is mapped back to the line
of the field it is about.

Agent files are trusted code: loading one imports the Python files its tools name.
Which functions a reference may name is in `bosun.spec.refs`; every tool is checked
here to be importable again by a worker in another process, from any folder.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bosun.errors import BosunError, SpecError
from bosun.spec import yaml_lines
from bosun.spec.a2a import A2ASettings
from bosun.spec.a2a_remote import A2aAgent, a2a_tools
from bosun.spec.agent import Agent, check_name
from bosun.spec.agent_tool import agent_tool
from bosun.spec.context import ContextSpec, MemorySpec
from bosun.spec.handoff import handoff
from bosun.spec.limits import Limits, RateLimit
from bosun.spec.mcp import McpServer, mcp_tools
from bosun.spec.model import ModelSpec
from bosun.spec.refs import check_reimportable, load_module, load_object, load_trusted
from bosun.spec.sources import resolve_ref
from bosun.spec.tool import Effect, RetryPolicy, Tool, make_tool
from bosun.spec.vocab import Autonomy, History, OnChildFailure

REF_PATTERN = r"^[^:\s]+:[A-Za-z_][\w.]*$"
AGENT_PREFIX = "agent:"


class ToolEntry(BaseModel):
    """One `tools:` entry: a Python reference (`ref`), the tools of an MCP server (`mcp`,
    with which of them to take and how to govern them; see docs/mcp.md), or another agent
    (`agent`, an agent file beside this one; see docs/teams.md)."""

    model_config = ConfigDict(extra="forbid")

    ref: str | None = Field(default=None, pattern=REF_PATTERN)
    name: str | None = None
    effect: Effect | None = None
    idempotent: bool | list[str] | None = None
    timeout: float | None = Field(default=None, gt=0)
    retry: RetryPolicy | None = None
    trusted: bool | None = None
    undo: str | None = Field(default=None, pattern=REF_PATTERN)
    sensitive: list[str] | None = None
    # Sinks (`bosun.spec.sinks`): argument names; an `mcp` entry may map tool globs to them.
    egress: list[str] | dict[str, list[str]] | None = None
    targets: list[str] | dict[str, list[str]] | None = None
    amounts: list[str] | dict[str, list[str]] | None = None
    mcp: McpServer | None = None
    a2a: A2aAgent | None = None  # a remote A2A agent: `a2a: URL` or `a2a: {card: URL, ...}`
    allow: list[str] | None = None
    deny: list[str] = Field(default_factory=list)
    effects: dict[str, Effect] = Field(default_factory=dict)
    prefix: str = Field(default="", pattern=r"^[A-Za-z0-9_-]*$")
    agent: str | None = Field(default=None, min_length=1)
    description: str | None = None
    input_schema: dict[str, Any] | None = None
    context: str | None = None
    limits: Limits | None = None  # an agent entry's per-call limits for its child
    share: float | None = Field(default=None, gt=0, le=1)  # of the parent's remainder
    on_child_failure: OnChildFailure | None = None

    @field_validator("a2a", mode="before")
    @classmethod
    def _short_a2a(cls, value: Any) -> Any:
        """`a2a: https://agents.example` is short for `a2a: {card: https://agents.example}`."""
        return {"card": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_source(self) -> ToolEntry:
        given = [f for f in ("ref", "mcp", "agent", "a2a") if getattr(self, f) is not None]
        if len(given) != 1:
            raise ValueError(
                "give one of `ref` (a Python tool), `mcp` (an MCP server's tools), `agent`"
                " (another agent, e.g. `agent:researcher`) or `a2a` (a remote A2A agent's"
                " card URL)"
            )
        if self.a2a is not None:
            others = [
                f
                for f in ("idempotent", "retry", "undo", "sensitive", "name")
                if getattr(self, f) is not None
            ] + (["deny"] if self.deny else [])
            if others:
                raise ValueError(
                    f"`{others[0]}` is not for `a2a` entries: a remote agent's skills take "
                    "`allow`, `effect`, `effects`, `trusted`, `timeout` and `prefix` (its calls"
                    " are never repeated: not idempotent)"
                )
        agent_only = [
            f
            for f in ("description", "input_schema", "context", "limits", "share")
            if getattr(self, f)
        ] + (["on_child_failure"] if self.on_child_failure is not None else [])
        if self.agent is not None:
            others = [
                f
                for f in (
                    *("idempotent", "timeout", "retry", "trusted", "undo", "sensitive", "allow"),
                    *("egress", "targets", "amounts"),
                )
                if getattr(self, f) is not None
            ] + [f for f in ("deny", "effects", "prefix") if getattr(self, f)]
            if others:
                raise ValueError(
                    f"`{others[0]}` is not for `agent` entries: an agent tool takes `name`,"
                    " `effect`, `description`, `input_schema`, `context`, `limits`, `share`"
                    " and `on_child_failure`"
                )
            return self
        if agent_only:
            raise ValueError(f"`{agent_only[0]}` is for `agent` entries")
        if self.ref is not None:
            mcp_only = [f for f in ("allow", "deny", "effects", "prefix") if getattr(self, f)]
            mcp_only += [
                f for f in ("egress", "targets", "amounts") if isinstance(getattr(self, f), dict)
            ]
            if mcp_only or isinstance(self.idempotent, list):
                raise ValueError(
                    f"`{(mcp_only or ['idempotent'])[0]}` as written is for `mcp` entries; a "
                    "Python tool takes `effect:`, `idempotent: true|false` and sinks as lists"
                    " of its argument names (`egress: [to]`)"
                )
        else:
            ref_only = [f for f in ("name", "undo", "sensitive") if getattr(self, f)]
            if ref_only:
                raise ValueError(f"`{ref_only[0]}` is for `ref` entries, not `mcp` ones")
        return self


class TeamEntry(BaseModel):
    """One `handoffs:` or `reviewers:` entry: another agent file (`agent:refunds`, or the
    long form with `history` for a handoff and `description`); see docs/teams.md."""

    model_config = ConfigDict(extra="forbid")

    agent: str = Field(min_length=1)
    history: History | None = None  # handoffs only: all | last_user | none
    description: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _short(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {
                "agent": value[len(AGENT_PREFIX) :] if value.startswith(AGENT_PREFIX) else value
            }
        return value


class AgentFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    version: str = "1"
    instructions: str = ""
    model: ModelSpec = Field(default_factory=lambda: ModelSpec(provider="openai"))
    tools: list[ToolEntry] = Field(default_factory=list)
    handoffs: list[TeamEntry] = Field(default_factory=list)
    reviewers: list[TeamEntry] = Field(default_factory=list)
    review_answer: str | None = None  # `agent:qa`: one of `reviewers` approves the answer
    limits: Limits = Field(default_factory=Limits)
    policy: str | dict[str, Any] | None = (
        None  # a policy YAML path (relative to this file) or inline
    )
    autonomy: Autonomy = Autonomy.AUTO
    tool_autonomy: dict[str, Autonomy] = Field(default_factory=dict)
    rate_limits: list[RateLimit] = Field(default_factory=list)
    on_child_failure: OnChildFailure = OnChildFailure.CONTINUE  # for every agent tool
    context: ContextSpec | None = None  # fitting the window (docs/memory.md)
    memory: MemorySpec | bool | None = None  # remember / recall / forget (docs/memory.md)
    a2a: A2ASettings | None = None  # publishing over A2A (docs/a2a.md)
    # Functions of installed packages the agent may use as tools or undos as they are.
    allow_external_tools: list[Annotated[str, Field(pattern=REF_PATTERN)]] = Field(
        default_factory=list
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        problem = check_name(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("model", mode="before")
    @classmethod
    def _short_model(cls, value: Any) -> Any:
        """`model: openai:gpt-4o-mini` is short for `{provider: openai, name: gpt-4o-mini}`."""
        if isinstance(value, str):
            provider, _, name = value.partition(":")
            return {"provider": provider, "name": name or provider}
        return value

    @field_validator("tools", mode="before")
    @classmethod
    def _short_refs(cls, value: Any) -> Any:
        """`- tools.py:lookup` is short for `- ref: tools.py:lookup`, and `- agent:researcher`
        for `- agent: researcher` (the `agent:` prefix is never a Python reference)."""
        if isinstance(value, list):
            return [_short_entry(item) if isinstance(item, str) else item for item in value]
        return value


def _short_entry(item: str) -> dict[str, str]:
    if item.startswith(AGENT_PREFIX):
        return {"agent": item[len(AGENT_PREFIX) :]}
    return {"ref": item}


def _parse(text: str, filename: str) -> tuple[AgentFile, dict[yaml_lines.Path, int]]:
    what = f"agent file {filename}"
    data, lines = yaml_lines.load(text, what)
    if not isinstance(data, dict):
        raise SpecError(f"{what}, line 1: expected a mapping with at least `name`")
    try:
        return AgentFile.model_validate(data), lines
    except ValidationError as exc:
        raise yaml_lines.validation_error(
            exc, what, lines, model=AgentFile, plain_value_errors=True
        ) from None


def parse_agent_yaml(text: str, filename: str) -> AgentFile:
    """The validated document of an agent file (its tools not yet imported)."""
    return _parse(text, filename)[0]


class _Located:
    """Errors about one agent file: "agent file x.yaml, line 7: `tools[1]`: ..."."""

    def __init__(self, path: str, lines: dict[yaml_lines.Path, int]):
        self.what = f"agent file {path}"
        self.lines = lines

    def error(self, loc: tuple[str | int, ...], message: str) -> SpecError:
        line = yaml_lines.line_for(loc, self.lines)
        return SpecError(f"{self.what}, line {line}: `{yaml_lines.field_name(loc)}`: {message}")


def mcp_entry_tools(entry: ToolEntry, folder: str) -> list[Tool]:
    """An `mcp:` entry's tools: the server is listed once, now, and each tool it serves
    that the entry takes is pinned (docs/mcp.md)."""
    assert entry.mcp is not None
    effects: dict[str, Any] = dict(entry.effects)
    if entry.effect is not None:  # one effect for all its tools, `effects:` per tool after it
        effects = {"*": entry.effect, **effects}
    return list(
        mcp_tools(
            entry.mcp,
            allow=entry.allow,
            deny=entry.deny,
            trusted=bool(entry.trusted),
            effects=effects,
            idempotent=entry.idempotent,
            timeout=entry.timeout or 30.0,
            retry=entry.retry,
            prefix=entry.prefix,
            folder=folder,
            egress=entry.egress,
            targets=entry.targets,
            amounts=entry.amounts,
        )
    )


def a2a_entry_tools(entry: ToolEntry) -> list[Tool]:
    """An `a2a:` entry's tools: the agent card is fetched once, now, and each skill the
    entry takes is pinned with the card's version (docs/a2a.md)."""
    assert entry.a2a is not None
    return list(
        a2a_tools(
            entry.a2a,
            allow=entry.allow,
            trusted=bool(entry.trusted),
            effect=entry.effect,
            effects=dict(entry.effects),
            timeout=entry.timeout or 30.0,
            prefix=entry.prefix,
        )
    )


def _other_agent(name: str, folder: str, loading: tuple[str, ...]) -> Agent:
    """The agent file an `agent:` entry names, loaded (a file that lists itself, directly or
    through others, is refused with the chain: each agent is pinned whole in its lister)."""
    path = agent_file_for(name, folder)
    if path in loading:
        chain = " -> ".join(os.path.basename(p) for p in (*loading, path))
        raise SpecError(f"agent {name!r} lists itself among its tools ({chain})")
    return load_agent_yaml(path, loading) if path.endswith((".yaml", ".yml")) else load_agent(path)


def _team(
    entries: list[TeamEntry], field: str, folder: str, loading: tuple[str, ...], at: _Located
) -> list[Tool]:
    """`handoffs:` or `reviewers:` entries as the agent tools they declare."""
    built: list[Tool] = []
    for i, entry in enumerate(entries):
        try:
            other = _other_agent(entry.agent, folder, loading)
            if field == "handoffs":
                built.append(
                    handoff(
                        other, history=entry.history or History.ALL, description=entry.description
                    )
                )
            elif entry.history is not None:
                raise SpecError("`history` is for `handoffs` entries, not reviewers")
            else:
                built.append(agent_tool(other, description=entry.description))
        except BosunError as exc:
            raise at.error((field, i), str(exc)) from None
    return built


def _agent_tool(entry: ToolEntry, folder: str, loading: tuple[str, ...]) -> Tool:
    """An `agent:` entry as a tool: the agent file it names loaded (and pinned whole)."""
    assert entry.agent is not None
    child = _other_agent(entry.agent, folder, loading)
    return agent_tool(
        child,
        name=entry.name,
        description=entry.description,
        input_schema=entry.input_schema,
        context=entry.context or "input",
        effect=entry.effect,
        limits=entry.limits,
        share=entry.share,
        on_child_failure=entry.on_child_failure,
    )


def agent_file_for(name: str, folder: str) -> str:
    """The agent file an `agent:` entry names: a path (`.yaml`, `.yml` or `.py`) relative to
    the listing file, or a bare name found as `NAME.yaml`/`NAME.yml`/`NAME.py` beside it or
    in its `agents/` folder. Files, not a registry: a loaded file means the same anywhere."""
    if name.endswith((".yaml", ".yml", ".py")):
        tried = [os.path.normpath(os.path.join(folder, name))]
    else:
        tried = [
            os.path.join(folder, sub, name + ext)
            for sub in ("", "agents")
            for ext in (".yaml", ".yml", ".py")
        ]
    for candidate in tried:
        if os.path.isfile(candidate):
            return os.path.abspath(candidate)
    raise SpecError(
        f"`agent: {name}`: no agent file found (tried {', '.join(tried)}); write the file's"
        " path relative to this one, e.g. `agent:agents/researcher.yaml`"
    )


def _load_tool(entry: ToolEntry, folder: str, allowed: list[Any]) -> Tool:
    """One `tools:` entry as a Tool: the reference imported, the file's overrides applied."""
    assert entry.ref is not None and not isinstance(entry.idempotent, list)
    obj = load_trusted(entry.ref, folder, allowed)
    fn = getattr(obj, "fn", obj)
    base = obj if isinstance(obj, Tool) else None
    undo = resolve_ref(entry.undo, folder) if entry.undo else (base.undo if base else None)
    if entry.undo:
        load_trusted(undo, None, allowed)  # type: ignore[arg-type]
    return make_tool(
        fn,
        name=entry.name or (base.name if base else None),
        effect=entry.effect or (base.effect if base else "write"),
        idempotent=entry.idempotent
        if entry.idempotent is not None
        else (base.idempotent if base else False),
        timeout=entry.timeout or (base.timeout if base else 30.0),
        retry=entry.retry or (base.retry if base else None),
        trusted=entry.trusted if entry.trusted is not None else (base.trusted if base else True),
        undo=undo,
        sensitive=entry.sensitive or (base.sensitive if base else ()),
        **{
            f: tuple(getattr(entry, f)) if getattr(entry, f) is not None else _base_sink(base, f)
            for f in ("egress", "targets", "amounts")
        },
    )


def _base_sink(base: Tool | None, field: str) -> tuple[str, ...]:
    return tuple(getattr(base, field)) if base is not None else ()


def load_agent_yaml(path: str, _loading: tuple[str, ...] = ()) -> Agent:
    """An agent from a YAML file: tools imported relative to the file (trusted code).
    `_loading` is the chain of agent files that listed this one (`agent:` entries)."""
    text = yaml_lines.read_file(path, f"agent file {path}")
    spec, lines = _parse(text, path)
    at = _Located(path, lines)
    folder = os.path.dirname(os.path.abspath(path))
    allow, allowed = [], []
    for i, ref in enumerate(spec.allow_external_tools):
        allow.append(resolve_ref(ref, folder))
        try:
            obj = load_object(allow[-1])
        except BosunError as exc:
            raise at.error(("allow_external_tools", i), str(exc)) from None
        allowed.append(getattr(obj, "fn", obj))
    tools = []
    for i, entry in enumerate(spec.tools):
        if entry.agent is not None:
            try:
                tools.append(_agent_tool(entry, folder, (*_loading, os.path.abspath(path))))
            except BosunError as exc:
                raise at.error(("tools", i), str(exc)) from None
            continue
        if entry.a2a is not None:
            try:
                tools.extend(a2a_entry_tools(entry))
            except BosunError as exc:
                raise at.error(("tools", i), str(exc)) from None
            continue
        if entry.mcp is not None:
            try:
                tools.extend(mcp_entry_tools(entry, folder))
            except BosunError as exc:
                raise at.error(("tools", i), str(exc)) from None
            continue
        try:
            tool = _load_tool(entry, folder, allowed)
            check_reimportable(f"tool `{tool.name}`", tool.ref, tool.fn, allowed)
        except BosunError as exc:
            raise at.error(("tools", i), str(exc)) from None
        tools.append(tool)
    loading = (*_loading, os.path.abspath(path))
    handoffs = _team(spec.handoffs, "handoffs", folder, loading, at)
    reviewers = _team(spec.reviewers, "reviewers", folder, loading, at)
    try:
        return Agent(
            name=spec.name,
            version=spec.version,
            instructions=spec.instructions,
            model=spec.model,
            tools=tools,
            handoffs=handoffs,
            reviewers=reviewers,
            review_answer=spec.review_answer,
            limits=spec.limits,
            source=os.path.abspath(path),
            policy=os.path.normpath(os.path.join(folder, spec.policy))
            if isinstance(spec.policy, str)
            else spec.policy,
            autonomy=spec.autonomy,
            tool_autonomy=dict(spec.tool_autonomy),
            rate_limits=spec.rate_limits,
            allow_external_tools=allow,
            on_child_failure=spec.on_child_failure,
            context=spec.context,
            memory=spec.memory,
            a2a=spec.a2a,
        )
    except SpecError as exc:  # what only the whole agent can tell, e.g. two tools named alike
        raise at.error(("tools",), str(exc)) from None


def load_agent(target: str) -> Agent:
    """An agent from a `.yaml`/`.yml` file, a `.py` file (its `agent` variable) or `module:attr`."""
    if target.endswith((".yaml", ".yml")):
        return load_agent_yaml(target)
    try:
        if target.endswith(".py"):
            module = load_module(target)
            candidates = [v for v in vars(module).values() if isinstance(v, Agent)]
            obj = getattr(module, "agent", None) or (
                candidates[0] if len(candidates) == 1 else None
            )
            if obj is None:
                raise SpecError(
                    f"{target}: define exactly one Agent, or name it `agent`"
                    f" (found {len(candidates)})"
                )
            source = os.path.abspath(target)
        else:
            obj = load_object(target)
            source = target
    except (ImportError, SyntaxError) as exc:
        raise SpecError(f"cannot load agent from {target}: {exc}") from exc
    if not isinstance(obj, Agent):
        raise SpecError(f"{target} is a {type(obj).__name__}, not a bosun.Agent")
    if obj.source is None:
        obj.source = source
    return obj
