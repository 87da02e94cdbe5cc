"""Reviewers that veto: a proposed call a policy rule routes to a reviewer agent. A mixin
of `RunLoop`, like `CallSteps`, so the loop reads as the loop.

A rule with `review: agent:qa` (and usually a CEL `when:`) decides `review` for a call.
Nothing of the call has run; then:

1. **The reviewer starts as a child run** of the pinned reviewer agent (one of the agent's
   `reviewers`), in this run's tree, keyed `<run id>:<call id>:review`: a worker that dies
   after creating it and before the commit below finds the same reviewer run on resume.
   Its input is the proposed call as JSON (`bosun.spec.review.review_input`).
2. **The call waits for the verdict** durably: `ReviewRequested` and a child
   `WaitRequested` are committed together, and the run parks (`waiting`, no worker held).
   A SIGKILLed worker loses nothing: the reviewer run goes on (or is resumed), its end
   settles the wait and queues this run.
3. **The verdict** (`ReviewDecided`, read by `bosun.spec.review.read_verdict`):
   - `approve`: the call goes on through governance (decided again: every other rule,
     quota and kill switch still applies; only the `review` verdict is answered) and runs;
   - `veto`: not executed; the model sees `vetoed` with the reviewer's reason, as it sees
     a denial, and goes on;
   - `edit`: not executed; the model sees `edit_requested` with what to change, and may
     propose the call again (a new call, reviewed again).
   A reviewer run that did not succeed, or an answer that is not a verdict, is a veto:
   reviews fail closed.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from bosun.engine.waits import collect, requested
from bosun.errors import BosunError, BudgetExhausted
from bosun.journal.events import (
    Event,
    ReviewDecided,
    ReviewRequested,
    ToolFailed,
    WaitResolved,
)
from bosun.journal.redact import Redactor
from bosun.journal.text import clean_text
from bosun.spec.limits import Limits
from bosun.spec.review import read_verdict, review_input
from bosun.spec.vocab import ReviewVerdict, RunStatus
from bosun.spec.wait import Wait

if TYPE_CHECKING:
    from bosun.engine.state import CallState, RunState
    from bosun.govern.decision import Decision
    from bosun.spec.agent import Agent
    from bosun.store.base import Store

log = logging.getLogger("bosun.engine.reviews")


class Reviews:
    """Reviews in the step loop (see the module docstring). `RunLoop` provides these."""

    state: RunState
    agent: Agent
    store: Store
    spawn: Any  # engine.handoffs.SpawnChild | None

    def record(self, event: Event) -> None:
        raise NotImplementedError

    async def commit(self) -> None:
        raise NotImplementedError

    async def request_review(
        self, call: CallState, decision: Decision, kwargs: dict[str, Any]
    ) -> None:
        """Start the reviewer's run and park the call on it (or fail the call, closed)."""
        state = self.state
        name = decision.reviewer or ""
        reviewer = self.agent.reviewer_map.get(name)
        if reviewer is None or self.spawn is None:
            why = (
                "needs a Runtime to drive it" if reviewer else "is not among the agent's reviewers"
            )
            self._refuse(call, "review_unavailable", f"reviewer {name} {why}; not executed")
            return
        config = reviewer.source.config
        # Sensitive arguments (a password, a card number) never reach the reviewer's journal:
        # it reviews what the call does, masked by the proposer's own redaction rules.
        shown = Redactor.for_run(self.agent.snapshot()).value(call.tool, kwargs)
        text = review_input(self.agent.name, call.tool, shown, decision.rule, decision.reason)
        unset = dict.fromkeys(Limits.model_fields)
        limits = Limits.model_validate(unset | config["limits"]) if config.get("limits") else None
        key = f"{state.run_id}:{call.call_id}:review"
        try:
            child_id = await self.spawn(
                config["version"], config["agent"], text, state, key, limits
            )
        except BudgetExhausted as exc:
            self._refuse(call, "budget_exhausted", f"no budget left to review it: {exc}")
            return
        except BosunError as exc:
            self._refuse(call, "review_unavailable", f"reviewer {name} could not start: {exc}")
            return
        self.record(
            ReviewRequested(
                call_id=call.call_id,
                tool=call.tool,
                reviewer=name,
                rule=decision.rule,
                run_id=child_id,
            )
        )
        self.record(requested(call, Wait(child=child_id), time.time()))
        await self.commit()  # the review is durable before this run parks on it
        log.info("run %s call %s: reviewer %s (run %s)", state.run_id, call.call_id, name, child_id)

    async def collect_review(self, call: CallState) -> bool:
        """Journal the reviewer's verdict once its run has ended; True when it approved
        (the call goes on), False while it is pending or when the call was refused."""
        events = await collect(self.store, call)
        if not events:
            return False
        resolved = events[0]
        assert isinstance(resolved, WaitResolved)
        self.record(resolved)
        outcome = resolved.result if isinstance(resolved.result, dict) else {}
        if outcome.get("status") is None:  # the wait was cancelled: this run is ending
            for event in events[1:]:
                self.record(event)
            return False
        name, child = call.reviewer or "", str(outcome.get("run_id") or "")
        if outcome["status"] == RunStatus.SUCCEEDED:
            verdict, reason = read_verdict(outcome.get("output"))
        else:
            verdict = ReviewVerdict.VETO
            reason = (
                f"the reviewer's run {child} ended {outcome['status']}"
                f" ({outcome.get('reason') or 'no reason given'}); a review fails closed"
            )
        reason = clean_text(reason)
        self.record(
            ReviewDecided(
                call_id=call.call_id,
                tool=call.tool,
                reviewer=name,
                verdict=verdict,
                reason=reason,
                run_id=child,
            )
        )
        if verdict == ReviewVerdict.APPROVE:
            return True
        if verdict == ReviewVerdict.EDIT:
            self._refuse(
                call,
                "edit_requested",
                f"reviewer {name} asks for an edit before this call may run: {reason}."
                " Propose the call again with the change.",
            )
        else:
            self._refuse(call, "vetoed", f"vetoed by reviewer {name}: {reason}")
        return False

    def _refuse(self, call: CallState, error_type: str, message: str) -> None:
        self.record(
            ToolFailed(call_id=call.call_id, tool=call.tool, error_type=error_type, message=message)
        )


__all__ = ["Reviews"]
