"""Rollback: run the compensations of a run's executed effects, newest first.

A tool declares its undo (`@tool(undo=refund_reverse)`), a function called as
`undo(arguments, result)`. Each compensation is journaled in the run
(`tool_compensated`, audited); an effect whose tool declares no undo is
journaled as `compensation_missing` and reported, never skipped silently.
Rolling back twice does not compensate anything twice.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic_core import to_jsonable_python

from bosun.engine.journal import JournalWriter
from bosun.engine.state import rebuild
from bosun.errors import BosunError
from bosun.journal.events import (
    ApprovalResolved,
    CompensationMissing,
    Event,
    ToolCompensated,
    ToolFinished,
    ToolProposed,
)
from bosun.spec.agent import Agent


@dataclass(slots=True)
class RollbackReport:
    run_id: str
    compensated: list[str] = field(default_factory=list)  # "tool (call_id)"
    failed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.missing


@dataclass(slots=True, frozen=True)
class Effect:
    call_id: str
    tool: str
    arguments: dict[str, Any]
    result: Any


def executed_effects(agent: Agent, events: list[tuple[int, Event]]) -> list[Effect]:
    """Effects (write/irreversible tool calls that finished) not compensated yet, oldest first."""
    tools = agent.tool_map
    effects_of = {decl["name"]: decl["effect"] for decl in agent.snapshot()["tools"]}
    arguments: dict[str, str] = {}
    done: set[str] = set()
    effects: list[Effect] = []
    for _, event in events:
        if isinstance(event, ToolProposed):
            arguments[event.call_id] = event.arguments
        elif isinstance(event, ApprovalResolved) and event.arguments is not None:
            arguments[event.call_id] = event.arguments  # it ran with the approver's edits
        elif isinstance(event, ToolFinished):
            effect = effects_of.get(event.tool) or getattr(tools.get(event.tool), "effect", "write")
            if effect in ("write", "irreversible"):
                effects.append(
                    Effect(
                        event.call_id,
                        event.tool,
                        orjson.loads(arguments.get(event.call_id) or "{}"),
                        event.result,
                    )
                )
        elif isinstance(event, ToolCompensated) and event.ok:
            done.add(event.call_id)  # a failed compensation is tried again next time
    return [e for e in effects if e.call_id not in done]


async def rollback(
    journal: JournalWriter,
    agent: Agent,
    run_id: str,
    *,
    owner: str,
    by: str,
    last: int | None = None,
    lease_seconds: float = 30.0,
) -> RollbackReport:
    store = journal.store
    run = await store.acquire(run_id, owner, lease_seconds=lease_seconds)
    if run is None:
        raise BosunError(
            f"run {run_id} is being driven by another worker right now; cancel it or wait, "
            "then roll back"
        )
    report = RollbackReport(run_id)
    try:
        events = await store.events(run_id)
        state = rebuild(run_id, events)
        effects = executed_effects(agent, events)
        if last is not None:
            effects = effects[-last:]
        tools = {d["name"]: d for d in agent.snapshot()["tools"]}
        for effect in reversed(effects):
            undo_ref = (tools.get(effect.tool) or {}).get("undo")
            label = f"{effect.tool} ({effect.call_id})"
            if not undo_ref:
                event: Event = CompensationMissing(call_id=effect.call_id, tool=effect.tool, by=by)
                report.missing.append(label)
            else:
                event = await _compensate(agent, effect, undo_ref, by)
                (report.compensated if event.ok else report.failed).append(label)  # type: ignore[attr-defined]
            await journal.extend(state, [event], owner=owner)  # one by one: each is an effect
    finally:
        await store.release(run_id, owner)
    return report


async def _compensate(agent: Agent, effect: Effect, undo_ref: str, by: str) -> ToolCompensated:
    try:
        undo = agent.undo_function(undo_ref)  # the same rule as for tools (bosun.spec.refs)
        if asyncio.iscoroutinefunction(undo):
            result = await undo(effect.arguments, effect.result)
        else:
            result = await asyncio.to_thread(
                functools.partial(undo, effect.arguments, effect.result)
            )
        return ToolCompensated(
            call_id=effect.call_id,
            tool=effect.tool,
            undo=undo_ref,
            result=to_jsonable_python(result),
            by=by,
        )
    except Exception as exc:
        return ToolCompensated(
            call_id=effect.call_id,
            tool=effect.tool,
            undo=undo_ref,
            ok=False,
            message=f"{type(exc).__name__}: {exc}",
            by=by,
        )
