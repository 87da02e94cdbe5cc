"""Calling an agent tool: start the child run, park the call on it, turn its end into the
call's result. A mixin of `RunLoop` (like `CallSteps`), so the loop reads as the loop.

The call is governed like any other before it gets here (the parent's policies, autonomy,
quotas, kill switches; its start is committed). Then:

1. **Create the child**, once. The Runtime's `spawn` creates a queued run of the pinned
   child agent in the parent's tree (`parent_id`/`root_id`; the child's limits, tightened
   by the tool's per-call `limits`, capped at what the parent has left and reserved from
   it; `engine/budgets.py`) with the idempotency key
   `<parent run id>:<call id>`. A worker that dies after the child was created but before
   the call's wait was committed starts the call again on resume (agent tools are
   idempotent for exactly this reason) and the key returns the same child, never a second.
2. **Wait durably.** The outcome is `Wait(child=...)`: the loop journals `WaitRequested`
   and parks the parent (`waiting`; no worker held). The child's last append settles the
   wait and queues the parent; a child that already ended settles it at once.
3. **Answer.** On wake the wait's result (the child's `{run_id, status, output, reason}`)
   becomes `{"answer": output, "run_id": ...}` for a child that succeeded, and a
   structured `ToolFailed` (`child_failed`, `child_limit_exceeded`, `child_killed`,
   `child_cancelled`) the model sees otherwise, so the parent goes on and may recover.
   A child that cannot start (the parent's budget is used up: `budget_exhausted`) fails
   the call the same way, with nothing created.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from bosun.errors import BosunError, BudgetExhausted
from bosun.journal.events import Event, ToolFailed, ToolFinished
from bosun.journal.text import clean_text
from bosun.spec.agent_tool import child_input
from bosun.spec.limits import Limits
from bosun.spec.sourced import SourcedTool
from bosun.spec.vocab import RunStatus
from bosun.spec.wait import Wait
from bosun.tools.execute import ToolOutcome

if TYPE_CHECKING:
    from bosun.engine.state import CallState, RunState

# spawn(child version id, its snapshot, input, parent state, idempotency key, per-call
# limits) -> the child's run id.
Spawn = Callable[[str, dict[str, Any], str, "RunState", str, "Limits | None"], Awaitable[str]]

log = logging.getLogger("bosun.engine.agents")


class AgentCalls:
    """Agent tools in the step loop (see the module docstring). `RunLoop` provides these."""

    state: RunState
    spawn: Spawn | None

    async def call_agent(
        self, call: CallState, tool: SourcedTool, kwargs: dict[str, Any]
    ) -> ToolOutcome:
        """Start (or find again) the call's child run; the outcome waits for it."""
        if self.spawn is None:
            return ToolOutcome(
                False,
                error_type="agent_unavailable",
                message=f"{tool.name} starts a child run, which needs a Runtime to drive it",
            )
        state = self.state
        key = call.idempotency_key or f"{state.run_id}:{call.call_id}"
        config = tool.source.config
        text = child_input(tool, kwargs, state.messages)
        # Only what the entry set tightens the child's limits (unset: no default sneaks in).
        unset = dict.fromkeys(Limits.model_fields)
        limits = Limits.model_validate(unset | config["limits"]) if config.get("limits") else None
        try:
            child_id = await self.spawn(
                config["version"], config["agent"], text, state, key, limits
            )
        except BudgetExhausted as exc:
            return ToolOutcome(False, error_type="budget_exhausted", message=clean_text(str(exc)))
        except BosunError as exc:  # the child could not be created: nothing ran
            return ToolOutcome(False, error_type="child_not_started", message=clean_text(str(exc)))
        log.info("run %s call %s: started child run %s", state.run_id, call.call_id, child_id)
        return ToolOutcome(True, Wait(child=child_id))


def agent_answer(call: CallState, events: list[Event]) -> list[Event]:
    """The events closing an agent call, from the ones closing its child wait: the child's
    answer for a child that succeeded, a structured error for any other end."""
    answered: list[Event] = []
    for event in events:
        if not isinstance(event, ToolFinished) or not isinstance(event.result, dict):
            answered.append(event)
            continue
        outcome = event.result
        child, status = outcome.get("run_id"), outcome.get("status")
        if status == RunStatus.SUCCEEDED:
            answered.append(
                ToolFinished(
                    call_id=call.call_id,
                    tool=call.tool,
                    result={"answer": outcome.get("output"), "run_id": child},
                    duration_ms=event.duration_ms,
                    trusted=event.trusted,
                )
            )
            continue
        if status is None:  # a deadline's outcome, not the child's: pass it on as it is
            answered.append(event)
            continue
        answered.append(
            ToolFailed(
                call_id=call.call_id,
                tool=call.tool,
                error_type=f"child_{status}",
                message=f"agent {call.tool} (child run {child}) ended {status}:"
                f" {outcome.get('reason') or 'no reason given'}",
            )
        )
    return answered


__all__ = ["AgentCalls", "Spawn", "agent_answer"]
