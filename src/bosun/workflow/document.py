"""A workflow file: read, validated against the DSL's official JSON Schema and Bosun's
subset, and built into the agent that runs it.

A workflow is a Bosun agent (so submit, workers, governance, versions, traces and costs
apply unchanged): its model is the interpreter (provider `workflow`, `provider.py`), its
instructions the document itself (pinned in the version: a changed file is a new
version, and a run keeps the one it started with), its tools the actions the document
calls: registered Python functions, the built-ins (`tools.py`), agents (child runs).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson

from bosun.errors import BosunError, SpecError
from bosun.spec import yaml_lines
from bosun.spec.agent import Agent
from bosun.spec.agent_tool import agent_tool
from bosun.spec.limits import Limits
from bosun.spec.model import ModelSpec
from bosun.spec.refs import load_tool
from bosun.spec.sources import resolve_ref
from bosun.spec.tool import Tool, make_tool
from bosun.workflow.tools import BUILTINS

SCHEMA = os.path.join(os.path.dirname(__file__), "schema", "workflow-1.0.3.yaml")
# Calls Bosun runs (besides registered functions); the schema's others are refused.
CALLS = ("http", "agent", "human", "mcp", "a2a")
UNSUPPORTED_CALLS = ("grpc", "openapi", "asyncapi")
TASK_KINDS = (
    "call",
    "set",
    "switch",
    "for",
    "fork",
    "try",
    "do",
    "raise",
    "wait",
    "emit",
    "listen",
)  # `run` (containers, scripts, shells) is not supported
# A workflow's own limits: it may wait for days, and a loop calls the same function again.
LIMITS = Limits(max_steps=10_000, max_tool_calls=10_000, max_repeats=None, max_wall_seconds=None)


@lru_cache(maxsize=1)
def _validator() -> Any:
    import jsonschema
    import yaml

    with open(SCHEMA, encoding="utf-8") as f:
        schema = yaml.safe_load(f)
    return jsonschema.Draft202012Validator(schema)


@dataclass
class Workflow:
    """A loaded workflow: its document, where it came from, and the agent that runs it."""

    document: dict[str, Any]
    source: str | None
    agent: Agent

    @property
    def name(self) -> str:
        return self.agent.name

    @staticmethod
    def input_text(value: Any) -> str:
        """A run's input: the workflow input as JSON text."""
        return orjson.dumps(value).decode()


def _where(path: str | None, lines: dict[Any, int], loc: Sequence[Any]) -> str:
    line = yaml_lines.line_for(tuple(loc), lines) if lines else 1
    field = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in loc)
    field = field.replace(".[", "[") or "(document)"
    return f"{path or 'workflow'}, line {line}, `{field}`"


def parse(text: str, path: str | None = None) -> tuple[dict[str, Any], dict[Any, int]]:
    """The document and the line of every field; a SpecError naming file, line and field
    when it is not YAML, not a DSL 1.0 workflow, or uses what Bosun does not run."""
    what = f"workflow file {path}" if path else "workflow"
    document, lines = yaml_lines.load(text, what)
    if not isinstance(document, dict):
        raise SpecError(
            f"{path or 'workflow'}, line 1: a workflow is a mapping with `document:` and `do:`"
        )
    import jsonschema

    errors = list(_validator().iter_errors(document))
    if errors:
        best = _deepest(errors) or jsonschema.exceptions.best_match(errors)
        loc = list(best.absolute_path) + [f for f in [getattr(best, "bosun_field", None)] if f]
        raise SpecError(f"{_where(path, lines, loc)}: {_short(best.message)} (DSL 1.0 schema)")
    for loc, problem in _unsupported(document):
        raise SpecError(f"{_where(path, lines, loc)}: {problem}")
    return document, lines


def _flat(errors: Any) -> Iterator[Any]:
    for error in errors:
        yield error
        yield from _flat(error.context)


def _deepest(errors: list[Any]) -> Any:
    """The error deepest in the document, a concrete one (a missing or wrong field) before
    the `oneOf`/`unevaluatedProperties` it caused: a task matching no task kind is reported
    as what is wrong inside it, not as "not valid under any of the given schemas"."""
    concrete = [e for e in _flat(errors) if e.validator not in ("oneOf", "anyOf", "allOf")]
    if not concrete:
        return None
    depth = max(len(e.absolute_path) for e in concrete)
    deepest = [e for e in concrete if len(e.absolute_path) == depth]
    unknown = _unknown_everywhere(deepest)
    if unknown is not None:
        return unknown
    rank = {"unevaluatedProperties": 1, "additionalProperties": 1}
    return min(deepest, key=lambda e: rank.get(e.validator, 0))


def _unknown_everywhere(errors: list[Any]) -> Any:
    """A field no schema branch accepts (a typo, `sett:`): reported as unknown, with the
    close names, instead of what each branch would have required."""
    import re

    sets = [
        set(re.findall(r"'([^']+)'", e.message.split("(", 1)[-1]))
        for e in errors
        if e.validator == "unevaluatedProperties"
    ]
    if not sets:
        return None
    common = set.intersection(*sets)
    if not common:
        return None
    name = sorted(common)[0]
    first = next(e for e in errors if e.validator == "unevaluatedProperties")
    hint = yaml_lines.did_you_mean(name, KNOWN_FIELDS, listing="task fields are")
    first.message = f"unknown field{hint}"
    first.bosun_field = name  # reported at its own line
    return first


KNOWN_FIELDS = (
    *TASK_KINDS,
    "with",
    "if",
    "input",
    "output",
    "export",
    "timeout",
    "then",
    "metadata",
    "catch",
    "branches",
    "compete",
    "each",
    "in",
    "at",
    "while",
)


def _short(message: str) -> str:
    return message if len(message) < 300 else message[:300] + "…"


def tasks(items: list[dict[str, Any]], loc: tuple[Any, ...]) -> Iterator[tuple[tuple, str, dict]]:
    """Every task of a task list, nested ones too: (location, name, task)."""
    for i, item in enumerate(items):
        for name, task in item.items():
            here = (*loc, i, name)
            yield here, name, task
            for key in ("do", "try"):
                if isinstance(task.get(key), list):
                    yield from tasks(task[key], (*here, key))
            if isinstance(task.get("fork"), dict):
                yield from tasks(task["fork"].get("branches", []), (*here, "fork", "branches"))
            catch = task.get("catch")
            if isinstance(catch, dict) and isinstance(catch.get("do"), list):
                yield from tasks(catch["do"], (*here, "catch", "do"))


def _unsupported(document: dict[str, Any]) -> Iterator[tuple[tuple, str]]:
    for loc, _name, task in tasks(document["do"], ("do",)):
        if "run" in task:
            yield (*loc, "run"), "`run` tasks (containers, scripts, shells) are not supported"
        call = task.get("call")
        if call in UNSUPPORTED_CALLS:
            yield (
                (*loc, "call"),
                (
                    f"`call: {call}` is not supported by Bosun yet (supported: functions,"
                    f" {', '.join(CALLS)})"
                ),
            )
        if call == "agent" and not (task.get("with") or {}).get("agent"):
            yield (*loc, "with"), "`call: agent` needs `with: {agent: NAME, input: ...}`"
        listen = task.get("listen")
        if isinstance(listen, dict) and len(listen.get("to", {}).get("any", [None])) != 1:
            yield (
                (*loc, "listen", "to", "any"),
                (
                    "`listen.to.any` takes exactly one filter in Bosun (use `all` to wait for"
                    " several events)"
                ),
            )
        if isinstance(listen, dict) and "until" in listen.get("to", {}):
            yield (*loc, "listen", "to", "until"), "`listen.to.until` is not supported"


def metadata(document: dict[str, Any]) -> dict[str, Any]:
    """Bosun's settings in the document: `document.metadata.bosun`."""
    return ((document.get("document") or {}).get("metadata") or {}).get("bosun") or {}


def load_workflow(
    path: str,
    *,
    functions: Sequence[Tool | Callable[..., Any]] = (),
    agents: Sequence[Agent] = (),
    policy: Any = None,
) -> Workflow:
    """A workflow file as the `Workflow` that runs it. `functions` are Python tools it may
    `call` by name (besides `document.metadata.bosun.functions`, `name: module:function`
    references relative to the file); `agents` are agents it may `call: agent` (besides
    agent files found beside it or in `agents/`, as for `agent:` tool entries)."""
    text = yaml_lines.read_file(path, f"workflow file {path}")
    return build(text, path, functions=functions, agents=agents, policy=policy)


def build(
    text: str,
    path: str | None = None,
    *,
    functions: Sequence[Tool | Callable[..., Any]] = (),
    agents: Sequence[Agent] = (),
    policy: Any = None,
) -> Workflow:
    document, lines = parse(text, path)
    folder = os.path.dirname(os.path.abspath(path)) if path else os.getcwd()
    given = {t.name: t for t in (f if isinstance(f, Tool) else make_tool(f) for f in functions)}
    by_name = {a.name: a for a in agents}
    bosun = metadata(document)
    refs = bosun.get("functions") or {}
    tools: dict[str, Tool] = {}
    for loc, _name, task in tasks(document["do"], ("do",)):
        try:
            _add_tools(task, tools, given, refs, by_name, folder, bosun)
        except BosunError as exc:
            raise SpecError(f"{_where(path, lines, (*loc, 'call'))}: {exc}") from None
    doc = document["document"]
    if policy is None and isinstance(bosun.get("policy"), str | dict):
        policy = bosun["policy"]
        if isinstance(policy, str):
            policy = os.path.normpath(os.path.join(folder, policy))
    limits = LIMITS
    if isinstance(bosun.get("limits"), dict):
        limits = Limits.model_validate({**LIMITS.model_dump(), **bosun["limits"]})
    agent = Agent(
        name=doc["name"],
        version=doc["version"],
        model=ModelSpec(provider="workflow", name=f"{doc['namespace']}/{doc['name']}"),
        instructions=orjson.dumps(document).decode(),
        tools=list(tools.values()),
        limits=limits,
        source=os.path.abspath(path) if path else None,
        policy=policy,
    )
    return Workflow(document=document, source=agent.source, agent=agent)


def _add_tools(
    task: dict[str, Any],
    tools: dict[str, Tool],
    given: dict[str, Tool],
    refs: dict[str, str],
    agents: dict[str, Agent],
    folder: str,
    settings: dict[str, Any],
) -> None:
    if "wait" in task or "emit" in task or "listen" in task:
        kind = next(k for k in ("wait", "emit", "listen") if k in task)
        tools.setdefault(kind, BUILTINS[kind])
    if isinstance(task.get("catch"), dict) and task["catch"].get("retry"):
        tools.setdefault("wait", BUILTINS["wait"])  # a retry's delay is a durable timer
    call = task.get("call")
    if call is None:
        return
    if call == "http":
        tools.setdefault("http_get", BUILTINS["http_get"])
        tools.setdefault("http_send", BUILTINS["http_send"])
    elif call == "human":
        tools.setdefault("human_task", BUILTINS["human_task"])
    elif call == "mcp":
        from bosun.workflow.mcp_call import mcp_tool

        tool = mcp_tool(task.get("with") or {}, settings.get("mcp") or {}, folder)
        tools.setdefault(tool.name, tool)
    elif call == "a2a":
        from bosun.workflow.a2a_call import a2a_tool

        tool = a2a_tool(task.get("with") or {}, settings.get("a2a") or {})
        tools.setdefault(tool.name, tool)
    elif call == "agent":
        name = task["with"]["agent"]
        if name not in tools:
            tools[name] = agent_tool(_agent(name, agents, folder), name=name)
    elif call not in tools:
        if call in given:
            tools[call] = given[call]
        elif call in refs:
            tools[call] = load_tool(resolve_ref(refs[call], folder), None)
            if tools[call].name != call:
                tools[call] = _renamed(tools[call], call)
        else:
            raise SpecError(
                f"`call: {call}` names no function: pass it to load_workflow(functions=[...])"
                f" or declare it under `document.metadata.bosun.functions` as"
                f" `{call}: module:function`"
            )


def _renamed(tool: Tool, name: str) -> Tool:
    from dataclasses import replace

    return replace(tool, name=name)


def _agent(name: str, agents: dict[str, Agent], folder: str) -> Agent:
    if name in agents:
        return agents[name]
    from bosun.spec.loader import agent_file_for, load_agent, load_agent_yaml

    path = agent_file_for(name, folder)
    return load_agent_yaml(path) if path.endswith((".yaml", ".yml")) else load_agent(path)


__all__ = ["Workflow", "build", "load_workflow", "parse", "tasks"]
