"""`Runtime`: run agents, queue them, inspect and cancel runs. The everyday Python surface.

async with Runtime("bosun.db") as rt:
    result = await rt.run(agent, "Where is my order 1234?")
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import os
import socket
import time
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bosun.engine.budgets import child_budget, hold, tree_limits
from bosun.engine.controls import RuntimeControls
from bosun.engine.creation import new_run
from bosun.engine.journal import CommitListener, JournalWriter
from bosun.engine.leases import LeaseKeeper
from bosun.engine.loop import RunLoop, StopRequested
from bosun.engine.media import attached, store_media
from bosun.engine.parked import ParkedStates
from bosun.engine.state import RunState, rebuild
from bosun.engine.trees import TreeDriver
from bosun.errors import BosunError, BudgetExhausted, LeaseLost, RunNotFound, SpecError
from bosun.govern.governor import Governor, Policy
from bosun.govern.policy import PolicyWarning
from bosun.journal.events import Event, RunResumed
from bosun.journal.text import text_problem
from bosun.memory.embed import Embedder, embedder_from
from bosun.memory.service import Memory
from bosun.memory.sessions import conversation
from bosun.models.base import ModelProvider
from bosun.models.breaker import Breakers
from bosun.models.pricing import PriceTable
from bosun.models.registry import build_provider
from bosun.routing import RouteProvider as _RouteProvider  # registers `route`
from bosun.routing.rewards import OutcomeListener
from bosun.spec.agent import Agent
from bosun.spec.limits import Limits
from bosun.spec.media import Media
from bosun.spec.route import Route
from bosun.spec.vocab import PARKED_STATUSES
from bosun.store import open_store
from bosun.store.base import (
    NEEDS_ATTENTION,
    PAUSED,
    QUEUED,
    RUNNING,
    TERMINAL_STATUSES,
    WAITING,
    WAITING_APPROVAL,
    RunRecord,
    Store,
)
from bosun.tools.execute import DEFAULT_TOOL_THREADS, ToolPool
from bosun.tools.sources import SourcePool


@dataclass(frozen=True, slots=True)
class RunResult:
    run_id: str
    status: str
    output: str | None
    reason: str | None
    steps: int
    tool_calls: int
    input_tokens: int
    output_tokens: int
    cost: float

    @classmethod
    def of(cls, state: RunState) -> RunResult:
        return cls(
            run_id=state.run_id,
            status=state.status,
            output=state.output,
            reason=state.reason,
            steps=state.steps,
            tool_calls=state.tool_calls,
            input_tokens=state.input_tokens,
            output_tokens=state.output_tokens,
            cost=round(state.cost, 8),
        )


def default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Runtime(RuntimeControls, TreeDriver):
    def __init__(
        self,
        db: str | Store | None = None,
        *,
        prices: PriceTable | None = None,
        lease_seconds: float = 30.0,
        owner: str | None = None,
        tool_threads: int = DEFAULT_TOOL_THREADS,
        embedder: Embedder | str | None = None,
    ):
        self.store = db if isinstance(db, Store) else open_store(db)
        # Long-term memory (`bosun.memory`); `embedder` (or `BOSUN_EMBEDDINGS` at the edge)
        # adds vector recall to the lexical one.
        embedder = embedder_from(embedder) if isinstance(embedder, str) else embedder
        self.memory = Memory(self.store, embedder)
        self.prices = prices or PriceTable()
        self.lease_seconds = lease_seconds
        self.owner = owner or default_owner()
        self.leases = LeaseKeeper(self.store, self.owner, lease_seconds)
        self.breakers = Breakers()  # model endpoints' (tools' are shared: `Governor.breakers`)
        self.governor = Governor(self.store)
        # Threads for sync tool bodies (see `bosun.tools.execute`): sized here, on purpose.
        self.tool_pool = ToolPool(tool_threads)
        # The tool sources this runtime has open (opened at first use, closed in `close`).
        self.sources = SourcePool()
        self._agents: dict[str, Agent] = {}
        self._providers: dict[str, ModelProvider] = {}
        self._loops: dict[str, RunLoop] = {}
        self._lineages: dict[str, tuple[str, ...]] = {}  # run id -> it and its ancestors
        self._trees: dict[str, collections.deque[str]] = {}  # see `engine/trees.py`
        self.parked = ParkedStates()  # states of runs parked here, for their next drive
        # The one journal writer: run creation, the loops, resolve, rollback and the watchdog
        # all append through it, so its listeners see every event (`bosun.engine.journal`).
        self.journal = JournalWriter(self.store)
        self.outcomes: OutcomeListener | None = None  # set once a learning route is used

    @property
    def listeners(self) -> list[CommitListener]:
        """Observers of committed events (see `CommitListener`), e.g. trace and metric
        exporters: the journal writer's own list (`journal.listen` adds to it too)."""
        return self.journal.listeners

    async def __aenter__(self) -> Runtime:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        await self.store.open()

    async def close(self) -> None:
        await self.leases.close()
        await self.sources.close()
        self.tool_pool.close()
        for provider in self._providers.values():
            aclose = getattr(provider, "aclose", None)
            if aclose is not None:
                await aclose()
        self._providers.clear()
        await self.memory.close()
        await self.store.close()

    # -- agents ----------------------------------------------------------

    def register(self, agent: Agent, *, provider: ModelProvider | None = None) -> None:
        """Use this live agent object for runs pinned to its exact version.

        `provider`, when given, answers this version's model turns instead of one built
        from its model spec (`bosun mcp proxy`: the MCP client is the model).

        A policy given as a file path is read now and pinned into the agent's
        version, like its instructions: changing the file makes a new version.
        Every tool (and undo) is checked to be importable again by a worker in
        another process (`Agent.check_tools`): a run queued or resumed elsewhere
        knows its tools only by reference. A policy rule naming a tool the agent
        does not have is a warning (`PolicyWarning`): it would never match.
        """
        if isinstance(agent.policy, str):
            policy = Policy.from_file(agent.policy)
            agent.policy = policy.model_dump(mode="json", exclude_defaults=True)
            agent._snapshot = None
        if provider is not None:
            self._providers[agent.version_id] = provider
        if self._agents.get(agent.version_id) is agent:
            return
        agent.check_tools()
        policy = self.governor.policy_for(agent)  # validate now, not at the first tool call
        for problem in policy.unknown_tools(agent.name, agent.tool_map):
            warnings.warn(problem, PolicyWarning, stacklevel=3)
        unknown = policy.unknown_reviewers(agent.name, agent.reviewer_map)
        if unknown:
            raise SpecError("; ".join(unknown))
        self._agents[agent.version_id] = agent

    def agent_for(self, run: RunRecord) -> Agent:
        """The agent version the run is pinned to (never the current file, if it changed)."""
        agent = self._agents.get(run.agent_version)
        if agent is None:
            agent = Agent.from_snapshot(run.spec)
            self._agents[run.agent_version] = agent
        return agent

    def provider_for(self, agent: Agent) -> ModelProvider:
        provider = self._providers.get(agent.version_id)
        if provider is None:
            pinned = agent.snapshot().get("route")  # the version's route, not today's by name
            provider = (
                _RouteProvider(Route.model_validate(pinned))
                if pinned is not None and agent.model_spec.provider == "route"
                else build_provider(agent.model_spec, self.breakers)
            )
            bind = getattr(provider, "bind", None)  # a route: shared breakers and learning
            if bind is not None:
                bind(self.store, self.prices, self.memory.embedder)
                if getattr(provider, "learner", None) is not None and self.outcomes is None:
                    self.outcomes = OutcomeListener(self.store)  # approvals, vetoes: rewards
                    self.journal.listen(self.outcomes)
            self._providers[agent.version_id] = provider
        return provider

    # -- starting runs ---------------------------------------------------

    async def _create(
        self,
        agent: Agent,
        input: str,
        *,
        status: str,
        tenant: str,
        user: str | None,
        session: str | None,
        tags: dict[str, str] | None,
        limits: Limits | None,
        key: str | None = None,
        parent: str | None = None,
        history: list[dict[str, str]] | None = None,
        share: float = 1.0,
        attachments: Sequence[Media | str | os.PathLike[str]] = (),
    ) -> RunRecord:
        for what, text in (
            ("idempotency key", key),
            ("input", input),
            ("user", user),
            ("session", session),
            *((f"tag {k!r}", f"{k}{v}") for k, v in (tags or {}).items()),
        ):
            problem = text_problem(text) if text else None
            if problem is not None:
                raise BosunError(f"the run's {what} {problem}: remove it and submit again")
        self.register(agent)
        # Media go to the artifact store first (a worker may claim the run at once); the
        # journal holds their references (`engine/media.py`).
        refs = [await store_media(self.store, tenant, attached(a), None) for a in attachments or ()]
        requested = agent.limits.merged(limits)
        for attempt in range(3):  # a child raced by its siblings asks again for what is left
            parent_run = await self._parent(parent, tenant) if parent is not None else None
            run, started = new_run(
                self.journal,
                agent,
                input,
                status=status,
                tenant=tenant,
                user=user,
                session=session,
                tags=tags,
                limits=limits,
                key=key,
                parent=parent_run,
                lease=(self.owner, self.lease_seconds) if status == RUNNING else None,
                history=history,
            )
            if refs:
                started = dataclasses.replace(started, attachments=refs)
            budget = None
            try:
                if parent_run is not None:
                    budget = child_budget(parent_run, requested, now=started.ts, share=share)
                    limited = budget.limits.model_dump(exclude_none=True)
                    started = dataclasses.replace(started, limits=limited)
                    hold(run, budget)
                tree_limits(run, budget.limits if budget else requested, started.ts)
                stored = await self.journal.create(run, [started])
            except BudgetExhausted:
                # A retried submit whose first attempt took the budget gets that run back.
                if key is not None and (kept := await self._keyed_child(parent, tenant, key)):
                    return kept
                if attempt == 2 or budget is None:
                    raise
                continue
            if stored.id != run.id:  # the key was used: that run, untouched
                return stored
            if refs:
                await self.store.use_artifacts(tenant, run.id, [r["artifact"] for r in refs])
            return run
        raise AssertionError("unreachable")

    async def _spawn_child(
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
    ) -> str:
        """Queue the child run of an agent tool's call (`engine/agent_calls.py`), a handoff
        (`engine/handoffs.py`: the parent's `session`, the conversation as `history`) or a
        review (`engine/reviews.py`): the pinned child agent (`version`, rebuilt from
        `snapshot` once per process), in the parent's tree and tenant, keyed so a repeat
        finds it again; it reserves at most `share` of what the parent has left
        (`engine/budgets.py`)."""
        agent = self._agents.get(version) or self._child_agent(snapshot)
        run = await self._create(
            agent,
            input,
            status=QUEUED,
            tenant=parent.tenant,
            user=parent.user,
            session=session,
            tags=dict(parent.tags),
            limits=limits,
            key=key,
            parent=parent.run_id,
            history=history,
            share=share,
        )
        self.queued_here(run)
        return run.id

    def _child_agent(self, snapshot: dict[str, Any]) -> Agent:
        """The child agent an agent tool pinned, rebuilt once per version in this process."""
        agent = Agent.from_snapshot(snapshot)
        return self._agents.setdefault(agent.version_id, agent)

    async def _keyed_child(self, parent: str | None, tenant: str, key: str) -> RunRecord | None:
        """The child of `parent` created with this idempotency key, if any."""
        children = await self.store.list_runs(tenant=tenant, parent_id=parent, limit=10_000)
        return next((r for r in children if r.idempotency_key == key), None)

    async def _lineage(self, run: RunRecord) -> tuple[str, ...]:
        """The run and its ancestors, nearest first: the kill switches of each cover it.
        A top-level run costs no query; a child one lookup per level, once per drive."""
        if run.parent_id is None:
            return (run.id,)
        above = self._lineages.get(run.parent_id)  # a run's ancestors never change
        if above is None and run.root_id == run.parent_id:
            above = (run.parent_id,)  # its parent is the root: nothing to read
        if above is None:
            lineage = [run.parent_id]
            parent_id: str | None = run.parent_id
            while parent_id is not None:
                parent = await self.store.get_run(parent_id)
                parent_id = parent.parent_id if parent is not None else None
                if parent_id is None or parent_id in lineage:
                    break
                lineage.append(parent_id)
            above = self._lineages[run.parent_id] = tuple(lineage)
            if len(self._lineages) > LINEAGE_CACHE:
                self._lineages.pop(next(iter(self._lineages)))
        return (run.id, *above)

    async def _parent(self, parent_id: str, tenant: str) -> RunRecord:
        """The parent of a child run: it must exist, be the caller's tenant's, and not be
        finished (a finished run starts nothing; its budget is settled)."""
        parent = await self.store.get_run(parent_id)
        if parent is None or parent.tenant != tenant:
            raise RunNotFound(f"no run {parent_id} to be the parent of a new run")
        if parent.status in TERMINAL_STATUSES:
            raise BosunError(
                f"run {parent_id} is {parent.status}: a finished run cannot start child runs"
            )
        return parent

    async def run(
        self,
        agent: Agent,
        input: str,
        *,
        tenant: str = "default",
        user: str | None = None,
        session: str | None = None,
        tags: dict[str, str] | None = None,
        limits: Limits | None = None,
        attachments: Sequence[Media | str | os.PathLike[str]] = (),
    ) -> RunResult:
        """Run to completion in this process (journaled; a worker resumes it if we crash).
        `attachments` (images, audio: `bosun.Media` or file paths) are stored as artifacts
        and reach the model as content parts with the input.
        Child runs it starts (agents as tools) are driven here too, so a run that parks only
        on its own children comes back finished; one that waits for a person, a signal or a
        timer comes back `waiting`/`waiting_approval`, and a worker continues it."""
        run = await self._create(
            agent,
            input,
            status=RUNNING,
            tenant=tenant,
            user=user,
            session=session,
            tags=tags,
            limits=limits,
            attachments=attachments,
        )
        self._trees.setdefault(run.id, collections.deque())  # what its drive queues
        try:
            result = await self.drive(run)
            # Waiting on children, or ended having queued one nobody waits on (its memory
            # extraction, `engine/extraction.py`): drive them here too.
            if result.status == WAITING or self._trees[run.id]:
                result = await self._drive_tree(run.id)
        finally:
            self._trees.pop(run.id, None)
        return result

    async def submit(
        self,
        agent: Agent,
        input: str,
        *,
        tenant: str = "default",
        user: str | None = None,
        session: str | None = None,
        tags: dict[str, str] | None = None,
        limits: Limits | None = None,
        key: str | None = None,
        parent: str | None = None,
        attachments: Sequence[Media | str | os.PathLike[str]] = (),
    ) -> str:
        """Queue a run for a worker; returns its id at once.

        With a `key`, submitting again (a retried webhook, a trigger firing twice) returns
        the run first submitted with that key in this tenant, never a second one. With a
        `parent`, the run is a child in that run's tree (same tenant; cancel, pause and
        kill switches of the parent cover it; its spans join the root's trace)."""
        run = await self._create(
            agent,
            input,
            status=QUEUED,
            tenant=tenant,
            user=user,
            session=session,
            tags=tags,
            limits=limits,
            key=key,
            parent=parent,
            attachments=attachments,
        )
        return run.id

    async def resume(self, run_id: str) -> RunResult:
        """Claim a run that is not leased (e.g. its worker died) and drive it here."""
        run = await self.get_run(run_id)
        if run.status in TERMINAL_STATUSES:
            return RunResult.of(rebuild(run.id, await self.store.events(run.id)))
        if run.status == NEEDS_ATTENTION:
            raise BosunError(
                f"run {run_id} needs attention and is not resumed automatically: {run.reason}"
            )
        if run.status == WAITING:
            raise BosunError(
                f"run {run_id} is waiting ({run.reason}); it is queued again when its waits"
                " settle (`bosun signal` for a signal)"
            )
        if run.status == WAITING_APPROVAL:
            raise BosunError(
                f"run {run_id} is waiting for approvals: decide them first (`bosun approvals`),"
                " then resume it"
            )
        if run.status == PAUSED:
            raise BosunError(f"run {run_id} is paused: `bosun unpause {run_id}` first")
        claimed = await self.store.claim_one(self.owner, run_id, lease_seconds=self.lease_seconds)
        if claimed is None:
            raise BosunError(
                f"run {run_id} is leased by {run.lease_owner} until its lease expires; "
                "wait for it, or let a worker take it over"
            )
        return await self.drive(claimed)

    # -- driving ---------------------------------------------------------

    async def drive(self, run: RunRecord) -> RunResult:
        """Continue a run this process holds the lease for, from its journal (only its tail
        when this process parked it: `engine/parked.py`)."""
        state = await self.parked.state(self.store, run.id)
        if state.status in TERMINAL_STATUSES:
            await self.store.release(run.id, self.owner)
            return RunResult.of(state)
        agent = self.agent_for(run)
        loop = RunLoop(
            store=self.store,
            agent=agent,
            provider=self.provider_for(agent),
            prices=self.prices,
            state=state,
            owner=self.owner,
            cancel_requested=run.cancel_requested,
            pause_requested=run.pause_requested,
            journal=self.journal,
            governor=self.governor,
            pool=self.tool_pool,
            sources=self.sources,
            lineage=await self._lineage(run),
            children=(run.child_steps, run.child_tokens, run.child_cost),
            spawn=self._spawn_child,
            session=await conversation(self.store, run.tenant, run.session, run.created_at)
            if run.session and run.parent_id is None
            else (),
            memory=self.memory,
        )
        task = asyncio.current_task()
        self._loops[run.id] = loop

        def lost() -> None:
            if task is not None:
                task.cancel(f"lease on {run.id} lost")

        self.leases.add(run.id, lost)
        try:
            if state.seq > 1 or run.claims > 1:  # someone drove it before us
                loop.record(RunResumed(worker=self.owner, from_seq=state.seq))
            # Attempts that recorded nothing (claims), or a call started again and again with
            # no result: whatever makes each attempt fail would repeat for ever, at a model
            # call or an effect each time. Stop and ask a person.
            call = next((c for c in state.open_calls.values() if c.started), None)
            if run.claims > MAX_ATTEMPTS_WITHOUT_PROGRESS or (
                call is not None and call.attempts >= MAX_ATTEMPTS_WITHOUT_PROGRESS
            ):
                tries = max(run.claims, call.attempts + 1 if call else 0)
                return RunResult.of(
                    await loop.park(
                        f"tried {tries} times in a row without progress: each attempt ended"
                        " (a crash, an error, a lost lease) before it recorded anything new"
                        + (f" (call {call.call_id}, {call.tool}, never returned)" if call else "")
                        + ", so it is not tried again. See the workers' logs, fix the cause,"
                        " then `bosun resolve RUN_ID`"
                        + (" (say whether the call took effect)" if call else " --retry"),
                        call.call_id if call else None,
                    )
                )
            ended = await loop.run()
            if ended.status in PARKED_STATUSES and loop.committed is not None:
                self.parked.keep(ended, loop.committed)
            return RunResult.of(ended)
        except StopRequested:
            return RunResult.of(state)
        except LeaseLost:
            return RunResult.of(state)
        finally:
            self.leases.remove(run.id)
            self._loops.pop(run.id, None)
            await self.store.release(run.id, self.owner)

    def stop_all(self) -> None:
        """Ask every run driven here to stop at its next step boundary (worker shutdown)."""
        for loop in self._loops.values():
            loop.stop_requested = True

    # -- inspecting ------------------------------------------------------

    async def get_run(self, run_id: str) -> RunRecord:
        run = await self.store.get_run(run_id)
        if run is None:
            raise RunNotFound(f"no run {run_id!r} in {self.store.url}")
        return run

    async def events(self, run_id: str) -> list[tuple[int, Event]]:
        await self.get_run(run_id)
        return await self.store.events(run_id)

    async def result(self, run_id: str) -> RunResult:
        await self.get_run(run_id)
        return RunResult.of(await self.parked.state(self.store, run_id, take=False))

    async def wait(
        self, run_id: str, *, poll: float = 0.2, timeout: float | None = None
    ) -> RunResult:
        """Wait until a run is finished or needs attention (for runs a worker drives)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            run = await self.get_run(run_id)
            if run.status in TERMINAL_STATUSES or run.status == NEEDS_ATTENTION:
                return await self.result(run_id)
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} still {run.status} after {timeout}s")
            await asyncio.sleep(poll)


# Ancestor chains `Runtime._lineage` keeps (the oldest dropped first).
LINEAGE_CACHE = 10_000

# A run tried this many times in a row with nothing new recorded parks as `needs_attention`:
# whatever makes every attempt fail would otherwise repeat for ever (each attempt may pay for
# a model call).
MAX_ATTEMPTS_WITHOUT_PROGRESS = 5


__all__ = ["RunResult", "Runtime"]
