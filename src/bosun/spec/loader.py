"""Load agents from YAML files, Python files or `module:attr` references.

YAML errors name the file, the line and the field (see `bosun.spec.yaml_lines`):
the document is composed with PyYAML (which keeps each node's position),
validated with pydantic, and each validation error is mapped back to the line
of the field it is about.
"""

from __future__ import annotations

import os
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bosun.errors import BosunError, SpecError
from bosun.spec import yaml_lines
from bosun.spec.agent import Agent
from bosun.spec.limits import Limits, RateLimit
from bosun.spec.model import ModelSpec
from bosun.spec.refs import load_module, load_object
from bosun.spec.tool import Effect, RetryPolicy, make_tool


class ToolEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ref: str = Field(pattern=r"^[^:\s]+:[A-Za-z_][\w.]*$")
    name: str | None = None
    effect: Effect | None = None
    idempotent: bool | None = None
    timeout: float | None = Field(default=None, gt=0)
    retry: RetryPolicy | None = None
    trusted: bool | None = None
    undo: str | None = Field(default=None, pattern=r"^[^:\s]+:[A-Za-z_][\w.]*$")
    sensitive: list[str] | None = None


class AgentFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    version: str = "1"
    instructions: str = ""
    model: ModelSpec = Field(default_factory=lambda: ModelSpec(provider="openai"))
    tools: list[ToolEntry] = Field(default_factory=list)
    limits: Limits = Field(default_factory=Limits)
    policy: str | dict[str, Any] | None = (
        None  # a policy YAML path (relative to this file) or inline
    )
    autonomy: Literal["observe", "suggest", "auto_notify", "auto"] = "auto"
    tool_autonomy: dict[str, Literal["observe", "suggest", "auto_notify", "auto"]] = Field(
        default_factory=dict
    )
    rate_limits: list[RateLimit] = Field(default_factory=list)

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
        """`- tools.py:lookup` is short for `- ref: tools.py:lookup`."""
        if isinstance(value, list):
            return [{"ref": item} if isinstance(item, str) else item for item in value]
        return value


def parse_agent_yaml(text: str, filename: str) -> AgentFile:
    what = f"agent file {filename}"
    node = yaml_lines.compose(text, what)
    if node is None or not isinstance(node, yaml.MappingNode):
        raise SpecError(f"{what}, line 1: expected a mapping with at least `name`")
    lines: dict[yaml_lines.Path, int] = {}
    data = yaml_lines.to_python(node, (), lines)
    try:
        return AgentFile.model_validate(data)
    except ValidationError as exc:
        raise yaml_lines.validation_error(exc, what, lines) from None


def _resolve_ref(ref: str, folder: str) -> str:
    source, _, attr = ref.rpartition(":")
    if source.endswith(".py") and not os.path.isabs(source):
        source = os.path.normpath(os.path.join(folder, source))
    return f"{source}:{attr}"


def load_agent_yaml(path: str) -> Agent:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise SpecError(f"cannot read agent file {path}: {exc.strerror}") from None
    spec = parse_agent_yaml(text, path)
    folder = os.path.dirname(os.path.abspath(path))
    tools = []
    for i, entry in enumerate(spec.tools):
        try:
            obj = load_object(_resolve_ref(entry.ref, folder))
        except BosunError as exc:
            raise SpecError(f"agent file {path}: `tools[{i}]`: {exc}") from None
        fn = getattr(obj, "fn", obj)
        base = obj if hasattr(obj, "effect") else None
        overrides = {
            "name": entry.name or (base.name if base else None),
            "effect": entry.effect or (base.effect if base else "write"),
            "idempotent": entry.idempotent
            if entry.idempotent is not None
            else (base.idempotent if base else False),
            "timeout": entry.timeout or (base.timeout if base else 30.0),
            "retry": entry.retry or (base.retry if base else None),
            "trusted": entry.trusted
            if entry.trusted is not None
            else (base.trusted if base else True),
            "undo": _resolve_ref(entry.undo, folder)
            if entry.undo
            else (base.undo if base else None),
            "sensitive": entry.sensitive or (base.sensitive if base else ()),
        }
        try:
            tools.append(make_tool(fn, **overrides))
        except SpecError as exc:
            raise SpecError(f"agent file {path}: `tools[{i}]`: {exc}") from None
    return Agent(
        name=spec.name,
        version=spec.version,
        instructions=spec.instructions,
        model=spec.model,
        tools=tools,
        limits=spec.limits,
        source=os.path.abspath(path),
        policy=os.path.normpath(os.path.join(folder, spec.policy))
        if isinstance(spec.policy, str)
        else spec.policy,
        autonomy=spec.autonomy,
        tool_autonomy=dict(spec.tool_autonomy),
        rate_limits=spec.rate_limits,
    )


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
