"""Reviewing the final answer: an agent that declares `review_answer: agent:qa` succeeds
only with an answer its reviewer approved. A mixin of `RunLoop`, like `Reviews` (the
review of proposed calls), whose child run, wait and verdict it reuses.

When the model answers without calling a tool:

1. **The reviewer starts as a child run** (keyed `<run id>:answer-<step>:review`, so a
   worker that dies between creating it and the commit below finds the same one), given
   the run's input and the answer as JSON (`bosun.spec.review.answer_input`).
2. **The answer waits** durably: the model's answer, `ReviewRequested` (tool `answer`, call
   id `answer-<step>`), a child `WaitRequested` and `RunWaiting` are committed together and
   the run parks (`waiting`, no worker held). The reviewer's end settles the wait and
   queues the run; a SIGKILL anywhere loses nothing.
3. **The verdict** (`ReviewDecided`, read as for calls, failing closed):
   - `approve`: the run ends `succeeded` with the answer;
   - `veto` / `edit`: the model is told why in a user message (folded from the verdict,
     `spec/review.answer_feedback`) and answers again, reviewed again; the run's limits
     (steps, tokens, cost) bound how often.

Reviews of answers are journaled, audited, traced and counted like reviews of calls
(`bosun_reviews_total`, veto rates per reviewer): they are the same events.
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
    RunWaiting,
    WaitResolved,
)
from bosun.journal.text import clean_text
from bosun.spec.limits import Limits
from bosun.spec.review import ANSWER, answer_input, read_verdict
from bosun.spec.vocab import ReviewVerdict, RunStatus
from bosun.spec.wait import Wait

if TYPE_CHECKING:
    from bosun.engine.state import CallState, RunState
    from bosun.spec.agent import Agent
    from bosun.store.base import Store

log = logging.getLogger("bosun.engine.reviews")


class AnswerReview:
    """The final answer's review in the step loop (see the module docstring)."""

    state: RunState
    agent: Agent
    store: Store
    spawn: Any  # engine.agent_calls.Spawn | None

    def record(self, event: Event) -> None:
        raise NotImplementedError

    async def commit(self) -> None:
        raise NotImplementedError

    async def finish(self, status: str, reason: str, output: str | None = None) -> RunState:
        raise NotImplementedError

    async def request_answer_review(self, answer: str) -> RunState:
        """Start the reviewer of the model's answer and park the run on it. A reviewer that
        cannot start fails the run: an answer that must be reviewed never stands unreviewed."""
        state = self.state
        name = self.agent.review_answer or ""
        reviewer = self.agent.reviewer_map[name]
        if self.spawn is None:
            return await self.finish(
                RunStatus.FAILED, f"reviewer {name} of the answer needs a Runtime to drive it"
            )
        config = reviewer.source.config
        unset = dict.fromkeys(Limits.model_fields)
        limits = Limits.model_validate(unset | config["limits"]) if config.get("limits") else None
        call_id = f"{ANSWER}-{state.steps}"
        text = answer_input(self.agent.name, state.input, answer)
        key = f"{state.run_id}:{call_id}:review"
        try:
            child_id = await self.spawn(
                config["version"], config["agent"], text, state, key, limits
            )
        except BudgetExhausted as exc:
            return await self.finish(
                RunStatus.LIMIT_EXCEEDED, f"no budget left to review the answer: {exc}"
            )
        except BosunError as exc:
            return await self.finish(
                RunStatus.FAILED, f"reviewer {name} of the answer could not start: {exc}"
            )
        self.record(
            ReviewRequested(
                call_id=call_id, tool=ANSWER, reviewer=name, rule="review_answer", run_id=child_id
            )
        )
        pending = state.answer_review
        assert pending is not None
        wait = requested(pending, Wait(child=child_id), time.time())
        self.record(wait)
        return await self._park_answer(pending)

    async def answer_reviewed(self) -> RunState | None:
        """The answer's review has a verdict, or not yet: end the run with an approved
        answer, hand a veto back to the model (None: the loop goes on to a model turn), or
        park again while the reviewer is still working."""
        pending = self.state.answer_review
        assert pending is not None
        if pending.review_verdict == ReviewVerdict.APPROVE:  # decided before a crash
            return await self._approved(pending)
        events = await collect(self.store, pending)
        if not events:
            return await self._park_answer(pending)
        resolved = events[0]
        assert isinstance(resolved, WaitResolved)
        self.record(resolved)
        outcome = resolved.result if isinstance(resolved.result, dict) else {}
        child = str(outcome.get("run_id") or "")
        if outcome.get("status") == RunStatus.SUCCEEDED:
            verdict, reason = read_verdict(outcome.get("output"))
        else:
            verdict = ReviewVerdict.VETO
            why = outcome.get("reason") or "no reason given"
            reason = (
                f"the reviewer's run {child} ended {outcome.get('status') or resolved.status}"
                f" ({why}); a review fails closed"
            )
        name = pending.reviewer or ""
        self.record(
            ReviewDecided(
                call_id=pending.call_id,
                tool=ANSWER,
                reviewer=name,
                verdict=verdict,
                reason=clean_text(reason),
                run_id=child,
            )
        )
        log.info("run %s: answer review by %s: %s", self.state.run_id, name, verdict)
        if verdict == ReviewVerdict.APPROVE:
            return await self._approved(pending)
        await self.commit()  # the veto and the model's feedback are durable before it answers
        return None

    async def _approved(self, pending: CallState) -> RunState:
        reason = f"the model answered; reviewer {pending.reviewer} approved the answer"
        return await self.finish(RunStatus.SUCCEEDED, reason, pending.arguments)

    async def _park_answer(self, pending: CallState) -> RunState:
        reason = f"waiting for reviewer {pending.reviewer} to review the answer"
        # What it waits on is in the journal already; the event counts the child waits.
        self.record(RunWaiting(reason=reason, children=1 if pending.wait_id else 0))
        await self.commit()
        return self.state


__all__ = ["AnswerReview"]
