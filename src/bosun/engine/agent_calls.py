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

**Fan-out.** A model turn that calls several agents starts every child (each call's start,
child and wait committed in turn) before the parent parks on all the waits, so the
children run concurrently on any workers. Each child's end wakes the parent at once
(`store/rules.wakes`), which journals that child's result while the siblings still run
and parks again on the rest. A failed child leaves its siblings alone unless the call's
tool (or the calling agent) declares `on_child_failure: cancel_siblings`: then the
children of the same turn still running are cancelled (their subtrees with them, at their
next step), and the failed call's error names them. The cancel is requested before the
failure is committed, so a crash in between cancels again on resume (idempotent).

**Budget shares.** Children started together must not starve each other: each reserves at
most its *share* of what the parent has left when it starts: the tool's `share`, else an
even split among the agent calls of the turn still to start (1/k for the k left, this one
included, so N siblings get about remainder/N each; `engine/budgets.py`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from bosun.errors import BosunError, BudgetExhausted
from bosun.journal.events import Event, ModelResponded, ToolFailed, ToolFinished
from bosun.journal.text import clean_text
from bosun.spec.agent import Agent
from bosun.spec.agent_tool import child_input, is_agent_tool
from bosun.spec.definition import Pin
from bosun.spec.limits import Limits
from bosun.spec.media import references
from bosun.spec.sourced import SourcedTool
from bosun.spec.tool import Tool
from bosun.spec.vocab import OnChildFailure, RunStatus, WaitKind, WaitStatus
from bosun.spec.wait import Wait
from bosun.store.base import Store
from bosun.store.waits_rows import WaitRecord
from bosun.tools.execute import ToolOutcome
from bosun.tools.sources import SourcePool

if TYPE_CHECKING:
    from bosun.engine.state import CallState, RunState

# spawn(child version id, its snapshot, input, parent state, idempotency key, per-call
# limits, share of the parent's remainder) -> the child's run id.
Spawn = Callable[
    [str, dict[str, Any], str, "RunState", str, "Limits | None", float], Awaitable[str]
]

log = logging.getLogger("bosun.engine.agents")


class AgentCalls:
    """Agent tools in the step loop (see the module docstring). `RunLoop` provides these."""

    state: RunState
    spawn: Spawn | None
    store: Store
    agent: Agent
    tools: dict[str, Tool]
    settled: dict[str, WaitRecord]  # its calls' settled waits as of this pass (`RunLoop._run`)
    sources: SourcePool
    pins: dict[str, Pin]
    to_start: int | None  # agent calls of this pass still to start (None: not counted yet)

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
        if self.to_start is None:  # counted once per pass, not once per call
            self.to_start = self._to_start()
        share = config.get("share") or 1 / max(1, self.to_start)
        self.to_start -= 1
        try:
            child_id = await self.spawn(
                config["version"], config["agent"], text, state, key, limits, share
            )
        except BudgetExhausted as exc:
            return ToolOutcome(False, error_type="budget_exhausted", message=clean_text(str(exc)))
        except BosunError as exc:  # the child could not be created: nothing ran
            return ToolOutcome(False, error_type="child_not_started", message=clean_text(str(exc)))
        log.info("run %s call %s: started child run %s", state.run_id, call.call_id, child_id)
        return ToolOutcome(True, Wait(child=child_id))

    async def stop_children(self) -> None:
        """The run is ending (finished, failed, killed, out of budget) while children it
        waits on still run: cancel them and their subtrees (at their next step), so no
        child outlives the parent that would read its answer; and remote tasks it waits
        on (A2A) are cancelled on the remote (`SourcePool.cancel_remote`)."""
        review = self.state.answer_review  # a reviewer of the answer is a child too
        for call in [*self.state.open_calls.values(), *([review] if review else [])]:
            if call.wait_status != WaitStatus.PENDING or not call.wait_id:
                continue
            remote = call.wait_kind == WaitKind.REMOTE and call.tool in self.pins
            if call is not review and not remote and not is_agent_tool(self.tools.get(call.tool)):
                continue
            wait = self.settled.get(call.wait_id) or await self.store.get_wait(call.wait_id)
            if wait is None or wait.status != WaitStatus.PENDING:
                continue
            if remote:  # a remote task (an A2A agent's): cancelled there, when its source can
                await self.sources.cancel_remote(self.pins[call.tool], wait.key)
            else:
                await self.store.request_cancel(wait.key)

    async def remote_expired(self, call: CallState) -> None:
        """A remote task's wait passed its deadline: nobody will read its answer, so it is
        cancelled on the remote when its tool's source can (an A2A agent's). Before the
        failure is committed: a crash in between cancels again on resume (harmless)."""
        wait = self.settled.get(call.wait_id or "")
        if wait is not None and wait.status == WaitStatus.EXPIRED and call.tool in self.pins:
            await self.sources.cancel_remote(self.pins[call.tool], wait.key)

    async def answered(self, call: CallState, events: list[Event]) -> list[Event]:
        """`agent_answer` for a child wait's events, with the media of the child's last tool
        results: their references are recorded as used by this run too (so `bosun gc` keeps
        them while it is kept), and the model gets them as content parts. A child whose
        agent has no tools can have no media: its journal is not read."""
        media: dict[str, list[dict[str, Any]]] = {}
        for event in events:
            result = event.result if isinstance(event, ToolFinished) else None
            if not isinstance(result, dict) or result.get("status") != RunStatus.SUCCEEDED:
                continue
            tool = self.tools.get(call.tool)
            child_agent = tool.source.config.get("agent", {}) if is_agent_tool(tool) else {}
            if not child_agent.get("tools"):
                continue
            child = str(result.get("run_id"))
            found = child_media(await self.store.events(child))
            if found:
                digests = list(dict.fromkeys(r["artifact"] for r in found))
                await self.store.use_artifacts(self.state.tenant, self.state.run_id, digests)
                media[child] = found
        return agent_answer(call, events, media)

    def _to_start(self) -> int:
        """The agent calls of the run not yet parked on a child (this one included)."""
        return sum(
            1
            for c in self.state.open_calls.values()
            if c.wait_id is None and is_agent_tool(self.tools.get(c.tool))
        )

    async def child_failed(
        self, call: CallState, tool: SourcedTool, failed: ToolFailed
    ) -> ToolFailed:
        """An agent call failed (its child ended badly, or could not start). With
        `on_child_failure: cancel_siblings` (the tool's, else the agent's), cancel the
        children of the same turn still running; returns the failure to journal, naming
        them. Called before the failure is committed: a crash re-runs it (idempotent)."""
        rule = tool.source.config.get("on_child_failure") or self.agent.on_child_failure
        if rule != OnChildFailure.CANCEL_SIBLINGS:
            return failed
        cancelled = []
        for sibling in list(self.state.open_calls.values()):
            if sibling.call_id == call.call_id or sibling.step != call.step:
                continue
            if sibling.wait_status != WaitStatus.PENDING or not sibling.wait_id:
                continue
            if not is_agent_tool(self.tools.get(sibling.tool)):
                continue
            wait = self.settled.get(sibling.wait_id) or await self.store.get_wait(sibling.wait_id)
            if wait is None or wait.status != WaitStatus.PENDING:
                continue  # that child ended already: its result stands
            if await self.store.request_cancel(wait.key):
                cancelled.append(wait.key)
        if not cancelled:
            return failed
        log.info(
            "run %s: %s failed, cancelled siblings %s", self.state.run_id, call.call_id, cancelled
        )
        note = f" (on_child_failure: cancel_siblings: cancelled child runs {', '.join(cancelled)})"
        return dataclasses.replace(failed, message=failed.message + note)


def child_media(events: list[tuple[int, Event]]) -> list[dict[str, Any]]:
    """The media references of a child's last tool results (those of its last turn that
    called tools), in order: what its answer was drawn from, handed to the parent."""
    found: list[dict[str, Any]] = []
    for _, event in events:
        if isinstance(event, ModelResponded) and event.tool_calls:
            found = []  # a later turn's results replace an earlier one's
        elif isinstance(event, ToolFinished):
            found.extend(r for r in references(event.result) if r.get("type") != "file")
    return found


def agent_answer(
    call: CallState, events: list[Event], media: dict[str, list[dict[str, Any]]] | None = None
) -> list[Event]:
    """The events closing an agent call, from the ones closing its child wait: the child's
    answer (with the media of its last tool results, by reference: `media` by child run id)
    for a child that succeeded, a structured error for any other end."""
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
                    result={"answer": outcome.get("output"), "run_id": child}
                    | ({"media": found} if (found := (media or {}).get(str(child))) else {}),
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


__all__ = ["AgentCalls", "Spawn", "agent_answer", "child_media"]
