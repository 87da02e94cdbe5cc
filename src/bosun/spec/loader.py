"""Load agents from YAML files, Python files or `module:attr` references.

YAML errors name the file, the line and the field: the document is composed
with PyYAML (which keeps each node's position), validated with pydantic, and
each validation error is mapped back to the line of the field it is about.
"""

from __future__ import annotations

import os
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bosun.errors import BosunError, SpecError
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


Path = tuple[str | int, ...]


def _to_python(node: yaml.Node, path: Path, lines: dict[Path, int]) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out = {}
        for key_node, value_node in node.value:
            key = key_node.value
            lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = _to_python(value_node, (*path, key), lines)
            lines[(*path, key)] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(item, (*path, i), lines) for i, item in enumerate(node.value)]
    return yaml.safe_load(yaml.serialize(node))


def _line_for(loc: tuple[Any, ...], lines: dict[Path, int]) -> int:
    # pydantic adds union branch names to loc (e.g. 'ToolEntry', 'str'); keep real fields.
    path: list[str | int] = []
    for part in loc:
        candidate = (*path, part)
        if candidate in lines:
            path.append(part)
    while tuple(path) not in lines and path:
        path.pop()
    return lines.get(tuple(path), 1)


def _field_name(loc: tuple[Any, ...], lines: dict[Path, int]) -> str:
    parts: list[str] = []
    path: list[str | int] = []
    for part in loc:
        candidate = (*path, part)
        if candidate in lines or (isinstance(part, str) and part.islower()):
            path.append(part)
            parts.append(f"[{part}]" if isinstance(part, int) else f".{part}")
    return "".join(parts).lstrip(".") or "(top level)"


def parse_agent_yaml(text: str, filename: str) -> AgentFile:
    try:
        node = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(f"agent file {filename}, line {line}: invalid YAML: {problem}") from None
    if node is None or not isinstance(node, yaml.MappingNode):
        raise SpecError(f"agent file {filename}, line 1: expected a mapping with at least `name`")
    lines: dict[Path, int] = {}
    data = _to_python(node, (), lines)
    try:
        return AgentFile.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in sorted(exc.errors(), key=lambda e: _line_for(tuple(e["loc"]), lines)):
            loc = tuple(err["loc"])
            got = f", got {err['input']!r}" if err["type"] != "missing" else ""
            message = err["msg"][0].lower() + err["msg"][1:]
            problems.append(
                f"agent file {filename}, line {_line_for(loc, lines)}: "
                f"`{_field_name(loc, lines)}`: {message}{got}"
            )
        # Union members each report; the first line per field is the useful one.
        unique = list(dict.fromkeys(problems))
        raise SpecError("\n".join(unique[:5])) from None


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
