"""What governance says of one call of a run, from the run's state alone.

The step loop asks it before a call runs, and an approver's edit is asked the same
question before it is accepted (`bosun.engine.approvals`), so an edited call can never
get past a rule the proposed one would have met.
"""

from __future__ import annotations

import time
from typing import Any

from bosun.engine.state import RunState, recalled_facts
from bosun.govern.decision import Decision
from bosun.govern.governor import Governor
from bosun.govern.suspects import CallProvenance, call_provenance
from bosun.spec.agent import Agent
from bosun.spec.tool import Tool


def decide_call(
    governor: Governor,
    agent: Agent,
    state: RunState,
    tool_name: str,
    tool: Tool | None,
    kwargs: dict[str, Any],
) -> Decision:
    """The policy and autonomy verdict for `tool_name(**kwargs)` now (quotas not counted).
    Provenance (`bosun.govern.provenance`) is worked out only if a rule may need it."""
    index = state.provenance

    def provenance() -> CallProvenance:
        index.instructions(agent.instructions)
        sinks = tool.sinks if tool is not None else {}
        effect = tool.effect if tool is not None else "write"
        return call_provenance(
            index, kwargs, sinks, request=index.request, tool=tool_name, effect=effect
        )

    return governor.decide(
        agent,
        tool_name,
        tool,
        kwargs,
        tenant=state.tenant,
        user=state.user,
        session=state.session,
        tags=state.tags,
        spend=state.cost,
        read_untrusted=state.read_untrusted,
        provenance=provenance,
        facts=recalled_facts(state.recalled, time.time()) if state.recalled else None,
    )
