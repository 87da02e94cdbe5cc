"""The step loop. Read it top to bottom: boundary checks, model, tool calls, journal, repeat.

Durability rule: an event is committed before anything that depends on it
happens outside this process. A model answer and the start of its first tool
call are committed together, before the tool runs; each tool result is
committed before the next tool starts or the next model call. So after a crash
the journal says exactly which effects finished, which started without a
result, and which never started (see docs/durability.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from bosun.engine.agent_calls import AgentCalls, Spawn
from bosun.engine.answer_review import AnswerReview
from bosun.engine.call_steps import CallSteps
from bosun.engine.context_steps import ContextSteps
from bosun.engine.extraction import Extraction
from bosun.engine.handoffs import Handoffs
from bosun.engine.journal import JournalWriter
from bosun.engine.limits import check_step, check_tool, effective_limits
from bosun.engine.media import expand, keeper
from bosun.engine.memory_steps import MemorySteps
from bosun.engine.pinned import source_refusal
from bosun.engine.progress import CallProgress
from bosun.engine.reviews import Reviews
from bosun.engine.state import CallState, RunState
from bosun.engine.waits import any_parked, only_wait_results, waiting_reason
from bosun.engine.waits import collect as collect_wait
from bosun.engine.waits import known as known_waits
from bosun.engine.waits import requested as wait_requested
from bosun.errors import ModelError, UnstorableEvent
from bosun.govern.breakers import breaker_key
from bosun.govern.governor import Governor
from bosun.journal.events import (
    Event,
    LimitReached,
    ModelFailed,
    ModelResponded,
    Notified,
    RunFinished,
    RunNeedsAttention,
    RunPaused,
    RunWaiting,
    ToolFailed,
    ToolFinished,
    ToolProposed,
    ToolShadowed,
)
from bosun.journal.text import clean_text
from bosun.memory.service import Memory
from bosun.models.base import ModelProvider, ModelRequest
from bosun.models.pricing import PriceTable
from bosun.spec.agent import Agent
from bosun.spec.agent_tool import is_agent_tool
from bosun.spec.handoff import is_handoff
from bosun.spec.tool import ToolContext, replayable
from bosun.spec.vocab import ApprovalStatus, ReviewVerdict, WaitKind, WaitStatus
from bosun.spec.wait import Wait
from bosun.store.base import (
    CANCELLED,
    FAILED,
    LIMIT_EXCEEDED,
    SUCCEEDED,
    Breaker,
    KillSwitch,
    Store,
)
from bosun.store.waits_rows import WaitRecord
from bosun.tools.execute import ToolPool, execute_tool
from bosun.tools.sources import SourcePool

log = logging.getLogger("bosun.engine")


class StopRequested(Exception):
    """The worker is shutting down: leave the run where it is, another worker resumes it."""


class RunEnded(Exception):
    """The run ended away from the loop's own exits (e.g. its step could not be stored)."""

    def __init__(self, state: RunState):
        super().__init__(state.reason)
        self.state = state


class RunLoop(
    CallSteps, ContextSteps, MemorySteps, Extraction, AgentCalls, Handoffs, Reviews, AnswerReview
):
    """One run, driven from its journal to its next stop (see the module docstring)."""

    def __init__(
        self,
        *,
        store: Store,
        agent: Agent,
        provider: ModelProvider,
        prices: PriceTable,
        state: RunState,
        owner: str,
        governor: Governor,
        pool: ToolPool,
        sources: SourcePool,
        cancel_requested: bool = False,
        pause_requested: bool = False,
        journal: JournalWriter,
        lineage: Sequence[str] = (),
        children: tuple[int, int, float] = (0, 0, 0.0),
        spawn: Spawn | None = None,
        session: Sequence[dict] = (),
        memory: Memory | None = None,
    ):
        self.store = store
        self.agent = agent
        self.provider = provider
        self.prices = prices
        self.state = state
        self.owner = owner
        self.governor = governor
        self.pool = pool
        self.sources = sources
        # Where each tool comes from and the digest of the definition the version pinned.
        self.pins = agent.pins
        self.reported_changes: set[str] = set()  # tools whose change this loop journaled
        self.cancel_requested = cancel_requested
        self.pause_requested = pause_requested  # learnt with each commit, like cancel
        self.stop_requested = False  # set by a worker that is shutting down
        self.limits = effective_limits(agent.limits, state)
        self.tools = {t.name: t for t in governor.visible_tools(agent)}
        # Fixed for the run's pinned version: looked up once per tool, not per call.
        self.autonomy = {name: governor.autonomy_of(agent, name) for name in self.tools}
        self.breaker_keys = {n: breaker_key(state.tenant, agent.name, n) for n in self.tools}
        # Looked up once here, not per call: which tools start child runs.
        self.agent_tools = {n for n, t in self.tools.items() if is_agent_tool(t)}
        self.keep = keeper(store, state.tenant, state.run_id)  # a result's media to the store
        self.handoff_tools = {n for n, t in self.tools.items() if is_handoff(t)}  # a subset
        self.breakers: dict[str, Breaker] = {}  # the failing ones, as of the latest commit
        self.tool_schemas = [t.schema() for t in self.tools.values()]
        self.system = (
            [{"role": "system", "content": agent.instructions}] if agent.instructions else []
        )
        self.session, self.memory = list(session), memory  # `memory/sessions.py`, `service.py`
        self._buffer: list[Event] = []
        self.route_context = {"agent": agent.name, "tenant": state.tenant, "tags": state.tags}
        # Every append goes through the Runtime's writer: it stamps, fences and notifies.
        self.journal = journal
        self.kill_switches: tuple[KillSwitch, ...] = ()  # as of the latest commit
        self.lineage = tuple(lineage) or (state.run_id,)  # this run, then its ancestors
        # What the run committed to child runs (steps, tokens, cost), as of the latest
        # commit: its limits count them with its own spend.
        self.children = children
        self.spawn = spawn  # starts the child run of an agent tool (`engine/agent_calls.py`)
        self.settled: dict[str, WaitRecord] = {}  # its calls' settled waits, once per pass
        self.deferred: set[str] = set()  # replayable calls finished but not yet committed
        self.to_start: int | None = None  # agent calls of this pass still to start
        self.committed: Event | None = None  # the latest event committed

    # -- journal ---------------------------------------------------------

    def record(self, event: Event) -> None:
        self.journal.stamp(event)  # now, before the state folds it in (finished_at is its ts)
        self.state.apply(event)
        self._buffer.append(event)

    async def commit(self) -> None:
        if not self._buffer:
            return
        events, self._buffer = self._buffer, []
        if self.deferred:  # what they left for this commit is in it
            self.deferred.clear()
        first_seq = self.state.seq - len(events) + 1  # an observer may record() during the await
        try:
            result = await self.journal.append(
                self.state.run_id,
                events,
                first_seq=first_seq,
                owner=self.owner,
                summary=self.state.summary(),
            )
        except UnstorableEvent as exc:
            raise RunEnded(await self.unstorable(events, exc)) from None
        self.committed = events[-1]  # the state's seq is this event's (when nothing is buffered)
        self.cancel_requested = self.cancel_requested or result.cancel_requested
        self.pause_requested = self.pause_requested or result.pause_requested
        self.kill_switches = result.kill_switches
        self.children = result.children
        if result.breakers or self.breakers:
            self.breakers = {b.key: b for b in result.breakers}

    async def finish(self, status: str, reason: str, output: str | None = None) -> RunState:
        await self.stop_children()  # no child outlives its parent (that it waits on)
        if status == SUCCEEDED and self.agent.memory_spec is not None:
            await self.start_extraction(output)  # facts proposed after it (extraction.py)
        self.record(RunFinished(status=status, reason=reason, output=output))
        await self.commit()
        return self.state

    async def park(self, reason: str, call_id: str | None = None) -> RunState:
        self.record(RunNeedsAttention(reason=reason, call_id=call_id))
        await self.commit()
        return self.state

    # -- the loop --------------------------------------------------------

    async def run(self) -> RunState:
        try:
            return await self._run()
        except RunEnded as ended:
            return ended.state

    async def _run(self) -> RunState:
        state = self.state
        self.kill_switches = tuple(await self.store.kill_switches())
        self.breakers = {b.key: b for b in await self.store.breakers()}
        while True:
            # 1. Step boundary: cancel, shutdown, kill switches, limits.
            if self.cancel_requested:
                return await self.finish(CANCELLED, "cancelled by request")
            if self.pause_requested and not state.open_calls:
                # Only between steps: a call the model proposed is decided and run first.
                self.record(RunPaused(reason="paused by request; `bosun unpause` continues it"))
                await self.commit()
                return state
            if self.stop_requested:
                await self.commit()
                raise StopRequested
            killed = await self.kill_check(None)
            if killed is not None:
                return killed
            if state.answer_review and (ended := await self.answer_reviewed()) is not None:
                return ended  # approved, or still with its reviewer (`engine/answer_review.py`)
            if not state.open_calls:
                limit = check_step(self.limits, state, time.time(), self.children)
                if limit is None:
                    cap = await self.governor.spend_cap_reached(self.agent, state.tenant)
                    if cap is not None:
                        limit = LimitReached(limit="spend_cap", value=0, maximum=0, reason=cap)
                if limit is not None:
                    self.record(limit)
                    return await self.finish(LIMIT_EXCEEDED, limit.reason)

                # 2. Model turn.
                answer = await self.model_turn()
                if answer is not None:
                    return answer

            # 3. The calls the model proposed, in order; each passes governance first.
            calls = state.open_calls.values()
            self.settled = (
                await known_waits(self.store, state.run_id, calls) if any_parked(calls) else {}
            )
            self.to_start = None
            for call in list(state.open_calls.values()):
                if call.wait_status == WaitStatus.PENDING and call.wait_id not in self.settled:
                    continue  # still waiting (a parent of 1,000 children skips 999 of them)
                stopped = await self.tool_call(call)
                if stopped is not None:
                    return stopped

            # 4. Calls waiting (for people, signals, children, timers): park durably, hold
            # nothing in memory; the store's one wake path queues the run again.
            # The event names none of them: the journal says which calls are open.
            approvals = waits = children = 0
            for c in state.open_calls.values():
                approvals += c.approval_status == ApprovalStatus.PENDING
                if c.wait_status == WaitStatus.PENDING:
                    waits += 1
                    children += c.wait_kind == WaitKind.CHILD
            if approvals or waits:
                reason = waiting_reason(approvals, waits)
                self.record(RunWaiting(reason=reason, children=children))
                await self.commit()
                if self.cancel_requested:  # asked while it was parking: nobody would wake it
                    continue
                return state
            if self._buffer and not only_wait_results(self._buffer, self.deferred):
                await self.commit()
            # Else what it collected goes with the next model answer: the waits' rows keep
            # those results, and replayable calls run again, so a crash before collects or
            # runs them again (it repeats the model call, as any crash during one does), and
            # a woken run's join commits once.

    async def model_turn(self) -> RunState | None:
        """Call the model; journal its answer. Returns the final state if the run ends here."""
        state = self.state
        step = state.steps
        provider, asked = self.provider.provider, self.provider.model
        sent = self.system + self.session + state.messages
        if not self.fitter.fits(self.session, state.messages):  # over budget: fit, journaled
            sent = await self.fit_context(step)
        messages = len(sent)
        if state.media:  # references to content parts, built now from the artifact store
            sent = await expand(self.store, state.tenant, sent)
        request = ModelRequest(
            messages=sent,
            tools=self.tool_schemas,
            turn=step,
            run_id=state.run_id,
            context=self.route_context,
            fit=self.fit_to if self.budgeted else None,  # a route choosing context budgets
        )
        started = time.perf_counter()
        try:
            response = await self.provider.complete(request)
        except ModelError as exc:
            if (routed := getattr(exc, "route", None)) is not None:
                self.record(routed)
            self.record(
                ModelFailed(
                    step=step,
                    error_type=exc.error_type,
                    message=str(exc),
                    provider=provider,
                    model=asked,
                    messages=messages,
                    latency_ms=round((time.perf_counter() - started) * 1000, 3),
                )
            )
            return await self.finish(FAILED, f"model call failed: {exc}")
        latency_ms = (time.perf_counter() - started) * 1000
        if response.route is not None:  # a route's choice, with what it considered
            self.record(response.route)
        spec = self.agent.model_spec
        answered = clean_text(response.model or spec.name)
        self.record(
            ModelResponded(
                step=step,
                model=answered,
                content=clean_text(c) if isinstance(c := response.content, str) else c,
                tool_calls=len(response.tool_calls),
                input_tokens=response.usage.input_tokens,
                output_tokens=response.usage.output_tokens,
                cost=self.prices.cost(
                    response.model or spec.name, response.usage, response.pricing or spec.pricing
                ),
                latency_ms=round(latency_ms, 3),
                finish_reason=response.finish_reason,
                provider=provider,
                messages=messages,
                request_model=asked if asked != answered else None,
            )
        )
        for call in response.tool_calls:
            self.record(
                ToolProposed(
                    step=step,
                    call_id=clean_text(call.id),
                    tool=clean_text(call.name),
                    arguments=clean_text(call.arguments),
                )
            )
        if not response.tool_calls:
            if self.deferred:  # a kill or cancel during those calls is seen before the end
                await self.commit()
                if (stopped := await self.kill_check(None)) is not None:
                    return stopped
                if self.cancel_requested:
                    return await self.finish(CANCELLED, "cancelled by request")
            answer = state.messages[-1]["content"] or ""
            if self.agent.review_answer:  # it stands only once its reviewer approves
                return await self.request_answer_review(answer)
            return await self.finish(SUCCEEDED, "the model answered", answer)
        return None

    async def tool_call(self, call: CallState) -> RunState | None:
        """Validate, govern, start (committed), execute and journal one call."""
        state = self.state
        tool = self.tools.get(call.tool)

        if call.wait_status == WaitStatus.PENDING and call.reviewer and not call.review_verdict:
            # A reviewer agent decides first (`engine/reviews.py`): go on only if it approved.
            if not await self.collect_review(call):
                return None
        elif call.wait_status == WaitStatus.PENDING:  # parked on a durable wait: its result
            trusted = tool.trusted if tool is not None else False  # its result's provenance
            events = await collect_wait(self.store, call, self.settled, trusted=trusted)
            if call.wait_kind == WaitKind.REMOTE and events:  # past its deadline: cancel it
                await self.remote_expired(call)
            if call.tool in self.handoff_tools:  # the receiver's end is this run's end
                return await self.handoff_ended(call, tool, events)  # type: ignore[arg-type]
            agent_call = call.tool in self.agent_tools
            for event in await self.answered(call, events) if agent_call else events:
                if agent_call and isinstance(event, ToolFailed):
                    # A child that ended badly: its siblings go on, or stop, as declared.
                    event = await self.child_failed(call, tool, event)  # type: ignore[arg-type]
                self.record(event)
            return None
        # Started before a crash, no result recorded: the effect may or may not have happened.
        if call.started and tool is None:
            why = self.agent.unavailable_tools.get(call.tool, "it is not among the agent's tools")
            return await self.park(
                f"tool call {call.call_id} ({call.tool}) was interrupted before its result "
                f"was recorded, and the tool cannot be loaded to check or repeat it ({why}). "
                "Check the target system, then resolve the run.",
                call.call_id,
            )
        if call.started and not tool.idempotent:
            return await self.park(
                f"tool call {call.call_id} ({call.tool}) was interrupted before its result "
                "was recorded, and the tool is not idempotent: it may or may not have taken "
                "effect, so it is not run again. Check the target system, then resolve the run.",
                call.call_id,
            )
        if call.approval_status == ApprovalStatus.PENDING:
            await self.collect_approval(call)
        if call.approval_status in (
            ApprovalStatus.PENDING,
            ApprovalStatus.DENIED,
            ApprovalStatus.EXPIRED,
        ):
            return None  # still waiting, or the model has been told it was refused
        if tool is None:
            return await self.unknown_tool(call)
        pin = self.pins[call.tool]
        if not self.sources.unchanged(pin):  # a source that may serve something else now
            refused = await source_refusal(
                self.sources, pin, call, self.agent.version_id, self.reported_changes
            )
            if refused:  # the model is told; nothing ran
                for event in refused:
                    self.record(event)
                return None

        kwargs = self.parse_arguments(call)
        if kwargs is None:
            return None
        limit = check_tool(self.limits, state, call)
        if limit is not None:
            self.record(limit)
            return await self.finish(LIMIT_EXCEEDED, limit.reason)
        if self.cancel_requested:
            return await self.finish(CANCELLED, "cancelled by request")
        killed = await self.kill_check(call.tool)
        if killed is not None:
            return killed

        # Every call is decided, an approved one too: a person's approval answers the
        # rule that asked for it, never a deny, a shadow or a quota (edits included).
        decision = await self.decide(
            call,
            kwargs,
            approved=call.approval_status == "approved",
            reviewed=call.review_verdict == ReviewVerdict.APPROVE,
        )
        if decision.verdict == "deny":
            self.record(
                ToolFailed(
                    call_id=call.call_id,
                    tool=call.tool,
                    error_type="denied",
                    message=f"denied by policy ({decision.rule}): {decision.reason}",
                )
            )
            return None
        if decision.verdict == "shadow":
            self.record(
                ToolShadowed(call_id=call.call_id, tool=call.tool, arguments=call.arguments)
            )
            return None
        if decision.verdict == "require_approval":
            self.request_approval(call, decision)
            return None
        if decision.verdict == "review":  # a reviewer agent decides first: park on it
            await self.request_review(call, decision, kwargs)
            return None

        breaker = self.breaker_keys[call.tool]
        if self.breakers and not await self.governor.breakers.allow(breaker, self.breakers):
            self.record(
                ToolFailed(
                    call_id=call.call_id,
                    tool=call.tool,
                    error_type="circuit_open",
                    message=f"{call.tool} failed repeatedly and is paused (circuit open); "
                    "it will be tried again later",
                )
            )
            return None

        async with self.pool.slot(tool) as slot:
            # A thread is ours (sync tools): the body begins right after its start is
            # committed, so queueing never counts as started, nor against the timeout.
            stopped = await self.start(call)
            if stopped is not None:
                return stopped
            if call.tool in self.handoff_tools:  # the conversation goes to another agent
                outcome = await self.hand_off(call, tool, kwargs)  # type: ignore[arg-type]
            elif call.tool in self.agent_tools:  # another agent: a child run, waited for durably
                outcome = await self.call_agent(call, tool, kwargs)  # type: ignore[arg-type]
            elif call.tool in self.memory_tools:  # the run's memory (`memory_steps.py`)
                outcome = await self.use_memory(call, kwargs)
            else:  # its progress reports are journaled coalesced while it runs
                progress: list[CallProgress] = []

                def context() -> ToolContext:  # made only if the source asks for it
                    reporter = CallProgress(call.call_id, call.tool, self.record, self.commit)
                    progress.append(reporter)
                    return ToolContext(
                        state.run_id,
                        call.call_id,
                        call.idempotency_key,
                        call.attempts,
                        reporter.report,
                    )

                try:
                    outcome = await execute_tool(
                        tool, kwargs, context, slot, self.sources, pin, self.keep
                    )
                finally:
                    if progress and progress[0].stop():  # a report is pending or committing
                        await progress[0].close()
        if outcome.ok and isinstance(outcome.result, Wait):
            # The result comes from outside the run: the call stays open, parked on the wait.
            self.record(wait_requested(call, outcome.result, time.time()))
            if not is_agent_tool(tool):
                await self.commit()
            # A child's wait is committed with what comes next (the next call's start, or the
            # park): a child that ends first settles it as it is stored (`_settle_early`),
            # and a crash before re-runs the call, whose key finds the same child.
            return None
        if outcome.ok:
            if self.breakers:
                await self.governor.breakers.success(breaker, self.breakers)
            self.record(
                ToolFinished(
                    call_id=call.call_id,
                    tool=call.tool,
                    result=outcome.result,
                    duration_ms=round(outcome.duration_ms, 3),
                    trusted=tool.trusted,
                    full=outcome.full,
                )
            )
        elif (
            outcome.error_type in ("timeout", "source_lost")
            and not tool.idempotent
            and tool.effect != "read"
        ):
            # The body began (or the request left) and did not return: it may still take
            # effect. Saying "it failed" would have the model try again (a second payment);
            # a person decides.
            await self.governor.breakers.failure(breaker)
            what = (
                f"timed out after {tool.timeout:g}s while running"
                if outcome.error_type == "timeout"
                else f"lost its source mid-call ({outcome.message})"
            )
            return await self.park(
                f"tool call {call.call_id} ({call.tool}) {what}; "
                "it may still take effect, and the tool is not idempotent, "
                "so it is neither reported as failed nor run again. Check the target system, "
                "then resolve the run.",
                call.call_id,
            )
        else:
            if outcome.fault == "tool":  # not the call's own bad arguments
                await self.governor.breakers.failure(breaker)
            failed = ToolFailed(
                call_id=call.call_id,
                tool=call.tool,
                error_type=outcome.error_type,
                message=outcome.message,
                duration_ms=round(outcome.duration_ms, 3),
            )
            if (
                call.tool in self.agent_tools
            ):  # a child that could not start: its siblings, as declared
                failed = await self.child_failed(call, tool, failed)  # type: ignore[arg-type]
            self.record(failed)
        if decision.verdict == "notify":
            message = (
                f"{self.agent.name} ran {call.tool}({call.arguments}) under rule {decision.rule}"
            )
            self.record(Notified(call_id=call.call_id, tool=call.tool, message=message))
            log.warning("notify: run %s: %s", state.run_id, message)
        if outcome.ok and decision.verdict != "notify" and replayable(tool):
            # An idempotent read: running it again after a crash is harmless by declaration,
            # so its result goes with the next commit (the next call's start, or the next
            # model answer's): one commit a step (docs/durability.md, "Commit points").
            self.deferred.add(call.call_id)
            return None
        # The result is durable before anything else happens (the next call's checks,
        # the next model call): a crash after this point never re-runs the call.
        await self.commit()
        return None


__all__ = ["LimitReached", "RunLoop", "StopRequested"]
