"""An agent: model, instructions, tools and limits. Plain data; running it is the engine's job."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from bosun.errors import BosunError, SpecError
from bosun.spec.a2a import A2ASettings
from bosun.spec.agent_tool import agent_tool, is_agent_tool
from bosun.spec.context import ContextSpec, MemorySpec
from bosun.spec.definition import Pin, SourceSpec, set_digest
from bosun.spec.handoff import handoff, is_handoff
from bosun.spec.limits import Limits, RateLimit
from bosun.spec.memory_tools import memory_tools
from bosun.spec.model import ModelSpec
from bosun.spec.providers import provider_names
from bosun.spec.refs import (
    allowed_objects,
    check_reimportable,
    load_tool,
    load_undo,
    served_tool,
)
from bosun.spec.sourced import SourcedTool
from bosun.spec.sources import resolve_ref
from bosun.spec.tool import RetryPolicy, Tool, make_tool
from bosun.spec.vocab import Autonomy, OnChildFailure
from bosun.spec.where import definition_site, located, python_error
from bosun.spec.yaml_lines import did_you_mean

AUTONOMY: tuple[str, ...] = tuple(a.value for a in Autonomy)


def parse_model(model: ModelSpec | str | dict[str, Any]) -> ModelSpec:
    """`"openai:gpt-4o-mini"`, `"scripted"`, a dict, or a `ModelSpec`."""
    if isinstance(model, ModelSpec):
        return model
    if isinstance(model, dict):
        return _validated(ModelSpec, model)
    if not isinstance(model, str):
        raise SpecError(f"`model`: write `provider:name` or a mapping, got {model!r}")
    provider, _, name = model.partition(":")
    if provider not in provider_names():
        hint = did_you_mean(provider, provider_names(), listing="the providers are")
        raise SpecError(
            f"`model`: {model!r}: write it as `provider:name`, e.g. `openai:gpt-4o-mini`{hint}"
        )
    return ModelSpec.model_validate({"provider": provider, "name": name or provider})


M = TypeVar("M", bound=BaseModel)


def _validated(model: type[M], value: Any, prefix: str | None = None) -> M:
    """`value` as `model`; a pydantic error becomes a SpecError naming the field."""
    if isinstance(value, model):
        return value
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        field = getattr(model, "field_prefix", "") if prefix is None else prefix
        raise SpecError(python_error(exc, model, field)) from None


def check_name(name: Any) -> str | None:
    """Why `name` cannot name an agent, or None when it can."""
    if (
        not isinstance(name, str)
        or not name
        or not name.replace("-", "").replace("_", "").isalnum()
    ):
        return f"agent name {name!r}: use letters, digits, '-' and '_'"
    return None


def _check_autonomy(field: str, value: Any) -> None:
    if value not in AUTONOMY:
        hint = did_you_mean(str(value), AUTONOMY, listing="write one of")
        raise SpecError(f"`{field}`: {value!r} is not an autonomy level{hint}")


def on_child_failure(value: Any, what: str = "`on_child_failure`") -> OnChildFailure:
    try:
        return OnChildFailure(value)
    except ValueError:
        choices = ", ".join(o.value for o in OnChildFailure)
        raise SpecError(f"{what} must be one of {choices}, got {value!r}") from None


def _as_tool(
    item: Tool | Agent | Callable[..., Any] | str, folder: str | None, allowed: Sequence[Any]
) -> Tool:
    if isinstance(item, Tool):
        return item
    if isinstance(item, Agent):  # another agent as a tool: calling it starts a child run
        return agent_tool(item)
    if isinstance(item, str) and item.startswith("agent:"):
        raise SpecError(
            f"`tools`: {item!r}: `agent:` entries are for YAML agent files; in Python pass the"
            f" agent itself (tools=[researcher]) or `agent_tool(researcher, ...)`"
        )
    if isinstance(item, str):
        try:
            return load_tool(resolve_ref(item, folder), None, allowed)
        except BosunError as exc:
            named = f"`{item}`" in str(exc) or repr(item) in str(exc)
            raise SpecError(f"`tools`: {exc}" if named else f"`tools`: {item!r}: {exc}") from None
    if callable(item):
        return make_tool(item)
    raise SpecError(f"`tools`: {item!r} is not a tool, a function or a `module:function` reference")


def pinned(tool: Tool) -> dict[str, Any]:
    """A tool's declaration as a version pins it: the agent's settings, the definition its
    source serves (see `bosun.spec.definition`) and that definition's digest."""
    if isinstance(tool, SourcedTool):  # served by a source, not code: it pins what it was served
        return tool.declaration()
    try:
        served = served_tool(tool.ref).definition()
    except (BosunError, ImportError, SyntaxError):
        # Not importable by reference (a lambda, a local function): `check_tools` refuses
        # it with the reason before any run uses this snapshot.
        served = tool.definition()
    return {**tool.declaration(), "definition": served.canonical(), "digest": served.digest}


@dataclass
class Agent:
    """Define an agent in Python; `bosun.spec.loader.load_agent` builds the same from YAML.

    Agent definitions are trusted code: string references in `tools` import Python
    modules (relative to the file that calls `Agent(...)`), see `bosun.spec.refs`.
    """

    name: str
    model: ModelSpec | str = "openai:gpt-4o-mini"
    instructions: str = ""
    # Tools: `@tool` functions, `module:function` references, sourced tools (MCP), and
    # other agents (each a tool that starts a child run; see docs/teams.md).
    tools: Sequence[Tool | Agent | Callable[..., Any] | str] = ()
    # Agents this one may hand the conversation to (`transfer_to_<name>` tools, among
    # `tools` once built; `handoff(agent, history=...)` for the options; docs/teams.md).
    handoffs: Sequence[Agent | Tool] = ()
    # Reviewer agents a policy rule may route a proposed call to (`review: agent:NAME`);
    # never offered to the model (docs/teams.md, "Reviewers that veto").
    reviewers: Sequence[Agent | Tool] = ()
    # The reviewer (one of `reviewers`, or an agent added to them) that must approve the
    # model's final answer before the run succeeds: `review_answer="qa"` / YAML
    # `review_answer: agent:qa` (docs/teams.md, "Reviewing the final answer").
    review_answer: Agent | str | None = None
    limits: Limits = field(default_factory=Limits)
    version: str = "1"
    source: str | None = None  # file or module the agent was loaded from
    # Governance (see docs/governance.md). `policy` is a policy document (dict), a
    # `bosun.govern.Policy`, or the path of a policy YAML file.
    policy: Any = None
    autonomy: str = "auto"
    tool_autonomy: dict[str, str] = field(default_factory=dict)
    rate_limits: Sequence[RateLimit] = ()
    # Functions of other packages (`module:function`) the agent may use as tools or undos
    # although they are not `@tool`s (see `bosun.spec.refs`).
    allow_external_tools: Sequence[str] = ()
    # Tools a pinned version names but this process cannot import: name -> why.
    unavailable_tools: dict[str, str] = field(default_factory=dict)
    # When one child run (an agent tool's call) fails: `continue` (its siblings go on) or
    # `cancel_siblings`; an agent tool's own `on_child_failure` wins (docs/teams.md).
    on_child_failure: OnChildFailure | str = OnChildFailure.CONTINUE
    # How the context is fitted into the model's window, and long-term memory (`remember`,
    # `recall`, `forget`): `bosun.spec.context`, docs/memory.md.
    context: ContextSpec | dict[str, Any] | None = None
    memory: MemorySpec | bool | dict[str, Any] | None = None
    # How `bosun serve` publishes the agent over A2A (`bosun.spec.a2a`; docs/a2a.md):
    # None is the defaults (authenticated callers only, text in and out).
    a2a: A2ASettings | None = None

    def __post_init__(self) -> None:
        site = definition_site()
        try:
            self._validate(os.path.dirname(site[0]) if site else None)
        except SpecError as exc:
            raise located(site, str(exc)) from None
        self._snapshot: dict[str, Any] | None = None
        self._checked: Sequence[Any] | None = None

    def _validate(self, folder: str | None) -> None:
        problem = check_name(self.name)
        if problem:
            raise SpecError(problem)
        self.model = parse_model(self.model)
        self.limits = _validated(Limits, self.limits)
        if self.context is not None:
            self.context = _validated(ContextSpec, self.context)
        if self.memory is not None:
            self.memory = _validated(MemorySpec, self.memory)
            if not self.memory.enabled:
                self.memory = None
        if self.memory is not None:  # offered its tools (pinned rebuilt ones come back too)
            have = {t.name for t in self.tools if isinstance(t, Tool)}
            offered = [t for t in memory_tools() if t.name not in have]
            if self.memory.extracting:  # an extraction run proposes facts, nothing else
                offered = [t for t in offered if t.name == "remember"]
            self.tools = [*self.tools, *offered]
        self.allow_external_tools = [resolve_ref(r, folder) for r in self.allow_external_tools]
        self._allowed = allowed_objects(self.allow_external_tools)
        if isinstance(self.tools, str | Tool) or callable(self.tools):
            raise SpecError(f"`tools`: write a list, e.g. tools=[lookup], got {self.tools!r}")
        self.tools = [_as_tool(t, folder, self._allowed) for t in self.tools]
        for item in self.handoffs:
            if not (isinstance(item, Agent) or is_handoff(item)):
                raise SpecError(
                    f"`handoffs`: {item!r}: write an agent, or `handoff(agent, history=...)`"
                )
        self.tools += [h if isinstance(h, Tool) else handoff(h) for h in self.handoffs]
        self.handoffs = [t for t in self.tools if is_handoff(t)]
        for item in self.reviewers:
            if not (isinstance(item, Agent) or is_agent_tool(item)):
                raise SpecError(f"`reviewers`: {item!r}: write an agent, e.g. reviewers=[qa]")
        self.reviewers = [r if isinstance(r, Tool) else agent_tool(r) for r in self.reviewers]
        self.review_answer = self._answer_reviewer()
        _check_autonomy("autonomy", self.autonomy)
        self.on_child_failure = on_child_failure(self.on_child_failure)
        if not isinstance(self.tool_autonomy, dict):
            raise SpecError(
                f"`tool_autonomy`: write a mapping of tool name to level, got {self.tool_autonomy!r}"
            )
        for tool_name, level in self.tool_autonomy.items():
            _check_autonomy(f"tool_autonomy.{tool_name}", level)
        self.rate_limits = [
            _validated(RateLimit, r, f"rate_limits[{i}]") for i, r in enumerate(self.rate_limits)
        ]
        if hasattr(self.policy, "model_dump"):
            self.policy = self.policy.model_dump(mode="json", exclude_defaults=True)
        for what, items in (("tools", self.tools), ("reviewers", self.reviewers)):
            names = [t.name for t in items]
            duplicates = {n for n in names if names.count(n) > 1}
            if duplicates:
                raise SpecError(f"agent {self.name}: two {what} are named {sorted(duplicates)}")

    def _answer_reviewer(self) -> str | None:
        """`review_answer` as the name of one of `reviewers` (an agent given here joins them)."""
        wanted = self.review_answer
        if wanted is None:
            return None
        if isinstance(wanted, Agent):
            if wanted.name not in {t.name for t in self.reviewers}:
                self.reviewers = [*self.reviewers, agent_tool(wanted)]
            return wanted.name
        if not isinstance(wanted, str):
            raise SpecError(f"`review_answer`: write a reviewer's name or agent, got {wanted!r}")
        name = wanted.removeprefix("agent:")
        names = sorted(t.name for t in self.reviewers)
        if name not in names:
            raise SpecError(
                f"`review_answer`: {name} is not among the agent's reviewers ({names}); "
                f"add it, e.g. reviewers=[{name}]"
            )
        return name

    def check_tools(self) -> None:
        """Refuse tools (and undos) a worker in a fresh process could not import again.

        `Runtime.register` calls this before a run starts or is queued: a tool defined
        inside a function works in this process but parks the run on any other worker.
        Checked once per list of tools.
        """
        if self._checked is self.tools:
            return
        for t in self.tools:
            assert isinstance(t, Tool)
            if isinstance(t, SourcedTool):
                continue  # no code to import: a worker opens its source
            what = f"agent {self.name}: tool `{t.name}`"
            check_reimportable(what, t.ref, t.fn, self._allowed)
            if t.undo:
                check_reimportable(f"{what}: its undo", t.undo, None, self._allowed)
        self._checked = self.tools

    def undo_function(self, ref: str) -> Callable[..., Any]:
        """The compensating function an undo reference names, imported under the same rule
        as tools: a `@tool`, a function of the agent's own files, or one it allows."""
        return load_undo(ref, self._allowed)

    @property
    def model_spec(self) -> ModelSpec:
        assert isinstance(self.model, ModelSpec)
        return self.model

    @property
    def context_spec(self) -> ContextSpec:
        return self.context if isinstance(self.context, ContextSpec) else ContextSpec()

    @property
    def memory_spec(self) -> MemorySpec | None:
        return self.memory if isinstance(self.memory, MemorySpec) else None

    @property
    def tool_map(self) -> dict[str, Tool]:
        return {t.name: t for t in self.tools}  # type: ignore[union-attr]

    @property
    def reviewer_map(self) -> dict[str, SourcedTool]:
        return {t.name: t for t in self.reviewers}  # type: ignore[misc]

    def snapshot(self) -> dict[str, Any]:
        """The pinned definition journaled with every run (no secrets, no code)."""
        if self._snapshot is None:
            self._snapshot = {
                "name": self.name,
                "version": self.version,
                "instructions": self.instructions,
                "model": self.model_spec.model_dump(mode="json", exclude_defaults=True),
                "tools": [pinned(t) for t in self.tools],  # type: ignore[arg-type]
                "limits": self.limits.model_dump(mode="json"),
                "source": self.source,
                "policy": self.policy,
                "autonomy": self.autonomy,
                "tool_autonomy": self.tool_autonomy,
                "rate_limits": [r.model_dump(mode="json") for r in self.rate_limits],
            }
            self._snapshot["tools_digest"] = set_digest(
                (t["name"], t["digest"]) for t in self._snapshot["tools"]
            )
            if self.allow_external_tools:
                self._snapshot["allow_external_tools"] = list(self.allow_external_tools)
            if self.reviewers:  # pinned whole, like agent tools (absent: older digests hold)
                self._snapshot["reviewers"] = [pinned(t) for t in self.reviewers]  # type: ignore[arg-type]
            if self.review_answer:  # absent: versions pinned before keep their digests
                self._snapshot["review_answer"] = self.review_answer
            if self.on_child_failure != OnChildFailure.CONTINUE:  # versions pinned before stay
                self._snapshot["on_child_failure"] = str(self.on_child_failure)
            if self.context is not None:  # absent when not declared: digests hold
                self._snapshot["context"] = self.context_spec.model_dump(
                    mode="json", exclude_defaults=True
                )
            if self.model_spec.provider == "route":  # its definition, pinned (routing.md)
                from bosun.spec.route import pinned_route

                if (route := pinned_route(self.model_spec.name)) is not None:
                    self._snapshot["route"] = route
            if self.memory_spec is not None:
                self._snapshot["memory"] = self.memory_spec.model_dump(
                    mode="json", exclude_defaults=True
                )
        return self._snapshot

    @property
    def pins(self) -> dict[str, Pin]:
        """Tool name -> what this version pinned about it (the source, the tool's name there,
        its definition's digest). Versions pinned before definitions were have none: their
        tools are not checked."""
        snapshot = self.snapshot()
        cached = getattr(self, "_pins", None)
        if cached is not None and cached[0] is snapshot:
            return cached[1]  # type: ignore[no-any-return]
        pins = {}
        for decl in snapshot.get("tools", []):
            definition = decl.get("definition") or {"name": decl["name"]}
            source = definition.get("source") or {}
            kind, identity = source.get("kind", "python"), source.get("id", decl["ref"])
            declared = decl.get("source") or source  # a sourced tool pins how to open it
            config = {"ref": identity} if kind == "python" else declared.get("config", {})
            pins[decl["name"]] = Pin(
                SourceSpec(kind, identity, config), definition["name"], decl.get("digest", "")
            )
        self._pins = (snapshot, pins)
        return pins

    @property
    def version_id(self) -> str:
        """`name@version+digest`: the digest changes whenever the definition does."""
        snapshot = self.snapshot()
        cached = getattr(self, "_version_id", None)
        if cached is not None and cached[0] is snapshot:
            return cached[1]
        digest = hashlib.sha256(orjson.dumps(snapshot, option=orjson.OPT_SORT_KEYS))
        version_id = f"{self.name}@{self.version}+{digest.hexdigest()[:10]}"
        self._version_id = (snapshot, version_id)
        return version_id

    @classmethod
    def from_snapshot(cls, snapshot: dict[str, Any]) -> Agent:
        """Rebuild the pinned agent a run started with.

        Tool code is imported again by reference (code cannot be journaled), but
        what the run relies on (effect, idempotency, timeout, retries, the schema
        the model was shown) comes from the pinned declaration.
        """
        tools: list[Tool] = []
        unavailable: dict[str, str] = {}
        allow = snapshot.get("allow_external_tools", [])
        try:
            allowed = allowed_objects(allow)
        except SpecError:
            allowed = ()  # the tools that needed it are refused below, each saying why
        for decl in snapshot.get("tools", []):
            if decl.get("source"):  # served by a source (MCP): rebuilt from what was pinned
                tools.append(SourcedTool.from_declaration(decl))
                continue
            try:
                live = load_tool(decl["ref"], None, allowed)
            except (BosunError, ImportError, SyntaxError) as exc:
                unavailable[decl["name"]] = str(exc)
                continue
            tools.append(
                Tool(
                    name=decl["name"],
                    fn=live.fn,
                    params=live.params,
                    effect=decl["effect"],
                    idempotent=decl["idempotent"],
                    timeout=decl["timeout"],
                    retry=RetryPolicy(**decl["retry"]),
                    context_param=live.context_param,
                    ref=decl["ref"],
                    trusted=decl.get("trusted", True),
                    undo=decl.get("undo"),
                    sensitive=tuple(decl.get("sensitive", ())),
                    # What the version showed the model, never what the code says today.
                    description=decl.get("description", live.description),
                    parameters=decl.get("parameters"),
                    egress=tuple(decl.get("egress", ())),
                    targets=tuple(decl.get("targets", ())),
                    amounts=tuple(decl.get("amounts", ())),
                )
            )
        agent = cls(
            name=snapshot["name"],
            model=ModelSpec.model_validate(snapshot["model"]),
            instructions=snapshot["instructions"],
            tools=tools,
            limits=Limits.model_validate(snapshot["limits"]),
            version=snapshot["version"],
            source=snapshot.get("source"),
            unavailable_tools=unavailable,
            policy=snapshot.get("policy"),
            autonomy=snapshot.get("autonomy", "auto"),
            tool_autonomy=snapshot.get("tool_autonomy", {}),
            rate_limits=snapshot.get("rate_limits", []),
            reviewers=[SourcedTool.from_declaration(d) for d in snapshot.get("reviewers", [])],
            review_answer=snapshot.get("review_answer"),
            on_child_failure=snapshot.get("on_child_failure", OnChildFailure.CONTINUE),
            context=snapshot.get("context"),
            memory=snapshot.get("memory"),
        )
        agent.allow_external_tools, agent._allowed = allow, allowed
        agent._snapshot = snapshot
        return agent
