"""Handoffs: an agent hands the conversation to another, which answers in its place.

`Agent(..., handoffs=[refunds])` (YAML `handoffs: [agent:refunds]`) offers the model a tool
`transfer_to_refunds`. Calling it ends the handing agent's part: the engine starts a child
run of the receiver in the same tree and session (so budgets, kill switches, cancels and
the tree views cover it), handing it the conversation filtered as declared (`history`), and
the handing run's answer is the receiver's (`bosun.engine.handoffs`). This module is the
definition, plain data like an agent tool (a handoff *is* an agent tool, marked as one):

- `history: all` (default): the user's and the assistant's texts so far (tool calls and
  their results stay with the agent that made them: the receiver has other tools);
  `last_user`: the user's latest message only; `none`: only the note of the transfer.
- The transfer takes one optional argument, `note`: what the receiver should know.
- Governed as what the receiver can do (its strongest effect), like any agent tool.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bosun.errors import SpecError
from bosun.spec.agent_tool import agent_tool, is_agent_tool
from bosun.spec.sourced import SourcedTool
from bosun.spec.vocab import History

if TYPE_CHECKING:
    from bosun.spec.agent import Agent

PREFIX = "transfer_to_"
HANDOFF_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "note": {"type": "string", "description": "what the receiving agent should know"}
    },
    "additionalProperties": False,
}
HISTORIES = tuple(h.value for h in History)


def handoff(
    agent: Agent, *, history: History | str = History.ALL, description: str | None = None
) -> SourcedTool:
    """The `transfer_to_<agent>` tool that hands the conversation to `agent`."""
    if history not in HISTORIES:
        raise SpecError(
            f"handoff to {getattr(agent, 'name', agent)!r}: `history` must be one of"
            f" {', '.join(HISTORIES)}, got {history!r}"
        )
    first = agent.instructions.strip().splitlines()[0] if agent.instructions.strip() else ""
    return agent_tool(
        agent,
        name=PREFIX + agent.name.replace("-", "_"),
        description=description
        or f"Hand this conversation over to the {agent.name} agent, who then answers the user"
        + (f" ({first})" if first else "")
        + ". Use it when the request is theirs to handle.",
        input_schema=HANDOFF_SCHEMA,
        handoff=str(History(history)),
    )


def is_handoff(tool: Any) -> bool:
    return is_agent_tool(tool) and "handoff" in tool.source.config


def handed_over(
    messages: list[dict[str, Any]], history: str, note: str, by: str
) -> tuple[list[dict[str, str]], str]:
    """(the receiver's history, its input) from the handing run's conversation.

    The input is the user's latest message (the receiver's goal), with the transfer's
    note after it; with `history: none`, the note alone."""
    texts = [
        {"role": m["role"], "content": m["content"]}
        for m in messages
        if m.get("role") in ("user", "assistant") and isinstance(m.get("content"), str)
        if m["content"]
    ]
    last = max((i for i, m in enumerate(texts) if m["role"] == "user"), default=None)
    said = f"[{by} handed this conversation over: {note}]" if note else ""
    if history == History.NONE or last is None:
        return [], said or f"[{by} handed this conversation over without a note]"
    asked = texts[last]["content"] + (f"\n\n{said}" if said else "")
    return (texts[:last] if history == History.ALL else []), asked


__all__ = ["HANDOFF_SCHEMA", "PREFIX", "handed_over", "handoff", "is_handoff"]
