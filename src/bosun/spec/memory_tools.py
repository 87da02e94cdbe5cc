"""The memory tools an agent with `memory:` is offered: `remember`, `recall`, `forget`.

Declared here as ordinary tools (schemas from type hints, effects for governance: a
policy sees and may deny, shadow or require approval for them like any other tool, and
their calls are journaled), and pinned in the agent's version with the rest. Their bodies
run inside the loop, which knows the run's tenant, user, agent and tree
(`bosun.engine.memory_steps`); called directly they refuse.
"""

from __future__ import annotations

from bosun.errors import BosunError
from bosun.spec.tool import Tool, tool

NAMES = ("remember", "recall", "forget")


def _inside() -> BosunError:
    return BosunError("memory tools run inside a Bosun run (the loop gives them the run's scope)")


@tool(effect="write", idempotent=True)
def remember(
    value: str,
    subject: str = "",
    attribute: str = "",
    source: str = "",
    valid_for_seconds: float | None = None,
    scope: str = "",
) -> dict:
    """Remember a fact for later conversations. For a fact about a thing give its subject
    (`order:1234`) and attribute (`status`); `source` is the tool you read it from (leave it
    empty for something the user told you); `valid_for_seconds` when it expires."""
    raise _inside()


@tool(effect="read", idempotent=True)
def recall(query: str, limit: int = 5) -> dict:
    """Search what was remembered earlier. Each result says where it came from, when it was
    observed, whether it is stale, and which other values disagree with it."""
    raise _inside()


@tool(effect="write", idempotent=True)
def forget(memory_id: str, reason: str = "") -> dict:
    """Forget a remembered fact for good (by the id `recall` gave)."""
    raise _inside()


def memory_tools() -> list[Tool]:
    return [remember, recall, forget]
