"""Agents as tools: another agent, offered to the model as one tool.

`Agent(..., tools=[researcher])` (or `tools: [agent:researcher]` in YAML) makes `researcher`
a tool of the parent. Calling it starts a *child run* of `researcher` in the parent's run
tree; the parent parks on a durable wait until the child ends, and the child's answer is
the call's result (its failure, a structured error). The engine's half is
`bosun.engine.agent_calls`; this module is the definition, which is plain data:

- **Pinned whole.** The tool is a `SourcedTool` of source kind `agent` whose config holds
  the child's full version snapshot: the parent's version id hashes it, so changing the
  child makes a new parent version, and a worker in another process rebuilds the child
  from the parent's snapshot with nothing to look up.
- **What the child sees is declared.** The call's arguments, validated against
  `input_schema` (default: `{"input": string}`; the child's input is that string, or the
  arguments as JSON for any other schema), plus the parent's conversation only with
  `context="conversation"`.
- **Bounded.** Each call's child gets the child agent's limits, tightened by the tool's
  `limits` (per call), and capped at its *share* of what the parent has left
  (`engine/budgets.py`): `share` (a fraction of the remainder when the child starts), by
  default an even split among the agent calls of the same model turn still to start. A
  child *reserves* what it may spend while it runs and settles when it ends.
- **Failure is declared.** `on_child_failure: cancel_siblings` cancels the other children
  still running when this tool's child fails; the default (`continue`, or the calling
  agent's own `on_child_failure`) leaves them alone.
- **Governed as what it can do.** Its effect defaults to the strongest effect among the
  child's own tools (`read` for a child without tools); a declared effect may be stronger,
  never weaker, so the parent's policies and autonomy see the risk the child carries. It is
  trusted only if every tool of the child is. It is idempotent by construction: the child
  is created with the key `<parent run id>:<call id>`, so a repeated call (a worker that
  died after creating the child) finds the child it already started instead of a second.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from bosun.errors import SpecError
from bosun.spec.definition import SourceSpec, ToolDefinition
from bosun.spec.limits import Limits
from bosun.spec.sourced import SourcedTool, sourced_tool
from bosun.spec.tool import RetryPolicy
from bosun.spec.vocab import Effect, OnChildFailure

if TYPE_CHECKING:
    from bosun.spec.agent import Agent

KIND = "agent"
CONTEXTS = ("input", "conversation")
DEFAULT_INPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"input": {"type": "string", "description": "what to ask the agent"}},
    "required": ["input"],
    "additionalProperties": False,
}
_RANK = {Effect.READ: 0, Effect.WRITE: 1, Effect.IRREVERSIBLE: 2}


def strongest_effect(agent: Agent) -> Effect:
    """The strongest effect among the agent's tools: what calling the agent may do."""
    effects = [Effect(t.effect) for t in agent.tool_map.values()]
    return max(effects, key=_RANK.__getitem__, default=Effect.READ)


def agent_tool(
    agent: Agent,
    *,
    name: str | None = None,
    description: str | None = None,
    input_schema: dict[str, Any] | None = None,
    context: str = "input",
    effect: Effect | str | None = None,
    limits: Limits | dict[str, Any] | None = None,
    share: float | None = None,
    on_child_failure: OnChildFailure | str | None = None,
    handoff: str | None = None,
) -> SourcedTool:
    """`agent` as a tool of another agent (see the module docstring). `handoff` (a
    `History`) makes it a handoff instead (`bosun.spec.handoff`)."""
    from bosun.spec.agent import Agent

    if not isinstance(agent, Agent):
        raise SpecError(f"agent_tool(...) takes a bosun.Agent, got {type(agent).__name__}")
    tool_name = name or agent.name
    what = f"agent tool `{tool_name}` (agent {agent.name})"
    if context not in CONTEXTS:
        raise SpecError(
            f"{what}: `context` must be one of {', '.join(CONTEXTS)}, got {context!r}"
            " (`conversation` also shows the child the parent's conversation so far)"
        )
    schema = DEFAULT_INPUT_SCHEMA if input_schema is None else input_schema
    if not isinstance(schema, dict) or schema.get("type") != "object":
        raise SpecError(
            f"{what}: `input_schema` must be a JSON schema of an object, e.g."
            ' {"type": "object", "properties": {"order": {"type": "string"}}}; got'
            f" {input_schema!r}"
        )
    agent.check_tools()  # a worker elsewhere must import the child's tools too: say so now
    least = strongest_effect(agent)
    try:
        declared = Effect(effect) if effect is not None else least
    except ValueError:
        raise SpecError(
            f"{what}: `effect` must be one of {', '.join(e.value for e in Effect)}, got {effect!r}"
        ) from None
    if _RANK[declared] < _RANK[least]:
        worst = [t.name for t in agent.tool_map.values() if Effect(t.effect) == least]
        raise SpecError(
            f"{what}: `effect: {declared}` is weaker than what the agent can do ({least}, through"
            f" {', '.join(worst)}); declare `{least}` or stronger, or leave `effect` out"
        )
    try:
        per_call = Limits.model_validate(limits) if isinstance(limits, dict) else limits
    except ValueError as exc:
        raise SpecError(f"{what}: `limits`: {exc}") from None
    if share is not None and (
        isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share <= 1
    ):
        raise SpecError(
            f"{what}: `share` is the fraction of the parent's remaining budget the child may"
            f" reserve, a number in (0, 1] (e.g. 0.25); got {share!r}"
        )
    if on_child_failure is not None:
        try:
            on_child_failure = OnChildFailure(on_child_failure)
        except ValueError:
            choices = ", ".join(o.value for o in OnChildFailure)
            raise SpecError(
                f"{what}: `on_child_failure` must be one of {choices}, got {on_child_failure!r}"
            ) from None
    trusted = all(t.trusted for t in agent.tool_map.values())
    snapshot = agent.snapshot()
    # One source per tool (two tools may offer one agent differently), named by both.
    identity = f"{tool_name}:{agent.version_id}"
    definition = ToolDefinition(
        name=tool_name,
        description=description or _description(agent),
        parameters=schema,
        effect=declared,
        idempotent=True,
        trusted=trusted,
        source_kind=KIND,
        source_id=identity,
    )
    config: dict[str, Any] = {
        "agent": snapshot,
        "version": agent.version_id,
        "context": context,
        "limits": per_call.model_dump(mode="json", exclude_unset=True) if per_call else None,
        "definition": definition.canonical(),
    }
    # Only when set, so the versions pinned before these options existed keep their ids.
    if share is not None:
        config["share"] = float(share)
    if on_child_failure is not None:
        config["on_child_failure"] = str(on_child_failure)
    if handoff is not None:
        config["handoff"] = handoff
    spec = SourceSpec(KIND, identity, config)
    return sourced_tool(
        definition,
        spec,
        name=tool_name,
        effect=declared,
        idempotent=True,
        timeout=30.0,
        retry=RetryPolicy(),
        trusted=trusted,
    )


def _description(agent: Agent) -> str:
    first = agent.instructions.strip().splitlines()[0] if agent.instructions.strip() else ""
    return f"Ask the {agent.name} agent. " + (first or "It answers with text.")


def is_agent_tool(tool: Any) -> bool:
    return (
        isinstance(tool, SourcedTool) and tool.source_spec is not None and tool.source.kind == KIND
    )


def child_input(
    tool: SourcedTool, arguments: dict[str, Any], conversation: list[dict[str, Any]]
) -> str:
    """The child run's input: the call's `input` (default schema) or its arguments as JSON,
    after the parent's conversation when the tool declares `context: conversation`."""
    config = tool.source.config
    if config["definition"]["parameters"] == DEFAULT_INPUT_SCHEMA:
        asked = str(arguments.get("input", ""))
    else:
        asked = orjson.dumps(arguments, option=orjson.OPT_SORT_KEYS).decode()
    if config.get("context") != "conversation":
        return asked
    lines = []
    for message in conversation:
        content = message.get("content")
        if message.get("role") in ("user", "assistant") and isinstance(content, str) and content:
            lines.append(f"{message['role']}: {content}")
    history = "\n".join(lines) or "(nothing yet)"
    return f"The conversation so far:\n{history}\n\nYour task:\n{asked}"


__all__ = [
    "DEFAULT_INPUT_SCHEMA",
    "agent_tool",
    "child_input",
    "is_agent_tool",
    "strongest_effect",
]
