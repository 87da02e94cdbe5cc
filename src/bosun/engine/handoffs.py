"""Handing the conversation to another agent: a `transfer_to_<name>` call. A mixin of
`RunLoop`, like `AgentCalls`, so the loop reads as the loop.

The call is governed like any other first (the handing agent's policies, autonomy, kill
switches; its start is committed). Then:

1. **The receiver starts as a child run** in the same tree and session, keyed
   `<run id>:<call id>` like an agent tool (so a worker that dies between creating it and
   committing the wait finds the same child on resume). Its `RunStarted` holds the
   conversation it was handed, filtered as the handoff declares (`history`; see
   `bosun.spec.handoff`), so it continues the conversation with its own instructions,
   tools, policy and limits. Being a child, the tree's budget, kill switches, cancels and
   views cover it. `HandedOff` is journaled with the wait: the handing run's journal says
   when the conversation left it and to which run.
2. **The handing run waits** durably (`Wait(child=...)`), holding no worker.
3. **The receiver's answer is the handing run's answer.** When the receiver ends, the
   handing run ends with the receiver's status and output (`RunFinished`), without asking
   its own model again: the conversation is no longer its own. So `bosun run` of the first
   agent prints the answer of whoever had the conversation last.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol

from bosun.errors import BosunError, BudgetExhausted
from bosun.journal.events import Event, HandedOff, WaitResolved
from bosun.journal.text import clean_text
from bosun.spec.handoff import handed_over
from bosun.spec.vocab import RunStatus
from bosun.spec.wait import Wait
from bosun.tools.execute import ToolOutcome

if TYPE_CHECKING:
    from bosun.engine.state import CallState, RunState
    from bosun.spec.agent import Agent
    from bosun.spec.limits import Limits
    from bosun.spec.sourced import SourcedTool

log = logging.getLogger("bosun.engine.handoffs")


class SpawnChild(Protocol):
    """`Runtime._spawn_child`: the child run of a call (agent tool, handoff, review)."""

    async def __call__(
        self,
        version: str,
        snapshot: dict[str, Any],
        input: str,
        parent: RunState,
        key: str,
        limits: Limits | None,
        share: float = 1.0,
        *,
        session: str | None = None,
        history: list[dict[str, str]] | None = None,
    ) -> str: ...


class Handoffs:
    """Handoffs in the step loop (see the module docstring). `RunLoop` provides these."""

    state: RunState
    agent: Agent
    spawn: Any  # SpawnChild | None

    def record(self, event: Event) -> None:
        raise NotImplementedError

    async def finish(self, status: str, reason: str, output: str | None = None) -> RunState:
        raise NotImplementedError

    async def hand_off(
        self, call: CallState, tool: SourcedTool, kwargs: dict[str, Any]
    ) -> ToolOutcome:
        """Start (or find again) the receiver's run; the outcome waits for it."""
        if self.spawn is None:
            return ToolOutcome(
                False,
                error_type="agent_unavailable",
                message=f"{tool.name} starts a child run, which needs a Runtime to drive it",
            )
        state, config = self.state, tool.source.config
        receiver = config["agent"]["name"]
        history, text = handed_over(
            state.messages, config["handoff"], str(kwargs.get("note") or ""), self.agent.name
        )
        key = call.idempotency_key or f"{state.run_id}:{call.call_id}"
        spawn: SpawnChild = self.spawn
        try:
            child_id = await spawn(
                config["version"],
                config["agent"],
                text,
                state,
                key,
                None,
                session=state.session,
                history=history,
            )
        except BudgetExhausted as exc:
            return ToolOutcome(False, error_type="budget_exhausted", message=clean_text(str(exc)))
        except BosunError as exc:  # the receiver could not be created: the run keeps it
            return ToolOutcome(False, error_type="child_not_started", message=clean_text(str(exc)))
        self.record(
            HandedOff(
                call_id=call.call_id,
                from_agent=self.agent.name,
                to_agent=receiver,
                run_id=child_id,
                history=config["handoff"],
                messages=len(history) + 1,
            )
        )
        log.info("run %s handed off to %s (run %s)", state.run_id, receiver, child_id)
        return ToolOutcome(True, Wait(child=child_id))

    async def handoff_ended(
        self, call: CallState, tool: SourcedTool, events: list[Event]
    ) -> RunState | None:
        """Journal the receiver's end (`events` close the call's wait) and end this run with
        the receiver's status and answer. None while the receiver runs, or when the wait was
        cancelled (this run is ending anyway)."""
        for event in events:
            self.record(event)
        resolved = next((e for e in events if isinstance(e, WaitResolved)), None)
        outcome = resolved.result if resolved is not None else None
        if not isinstance(outcome, dict) or outcome.get("status") is None:
            return None
        receiver = tool.source.config["agent"]["name"]
        child, status = outcome.get("run_id"), RunStatus(outcome["status"])
        if status == RunStatus.SUCCEEDED:
            return await self.finish(
                status,
                f"handed off to {receiver} (run {child}), which answered",
                outcome.get("output") or "",
            )
        return await self.finish(
            status,
            f"handed off to {receiver} (run {child}), which ended {status}:"
            f" {outcome.get('reason') or 'no reason given'}",
        )


__all__ = ["Handoffs", "SpawnChild"]
