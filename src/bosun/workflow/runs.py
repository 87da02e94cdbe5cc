"""A workflow run read back from its journal: where it went, where it waits, how it ended.

The same replay the interpreter does each turn (`provider.replay`), on the journal's
state: the path taken (the task pointers that ran, in order), the actions it waits on,
and a faulted run's DSL error. The console's graph and `bosun workflow run` read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from bosun.engine.state import rebuild
from bosun.journal.events import Event
from bosun.spec.agent import Agent
from bosun.workflow.interpreter import Faulted, Suspended
from bosun.workflow.provider import FAULTED, replay


@dataclass
class WorkflowView:
    path: list[str] = field(default_factory=list)  # task pointers that ran, in order
    waiting: list[str] = field(default_factory=list)  # task pointers of pending actions
    error: dict[str, Any] | None = None  # the DSL error of a faulted run
    output: Any = None


def is_workflow(agent: Agent) -> bool:
    return agent.model_spec.provider == "workflow"


def view(agent: Agent, run_id: str, events: list[tuple[int, Event]]) -> WorkflowView:
    state = rebuild(run_id, events)
    messages = [{"role": "system", "content": agent.instructions}, *state.messages]
    interp, reached = replay(messages, run_id)
    seen = dict.fromkeys(interp.trace)  # a loop runs a task again: drawn once
    result = WorkflowView(path=list(seen))
    if isinstance(reached, Suspended):
        result.waiting = [a.call_id.split("#")[0] for a in reached.actions]
    elif isinstance(reached, Faulted):
        result.error = reached.error
    else:
        result.output = reached
    if state.reason and state.reason.startswith("model call failed: " + FAULTED):
        result.error = fault_of(state.reason)
    return result


def fault_of(reason: str | None) -> dict[str, Any] | None:
    """The DSL error in a faulted run's reason."""
    if not reason or FAULTED not in reason:
        return None
    try:
        return orjson.loads(reason.split(FAULTED, 1)[1])
    except orjson.JSONDecodeError:
        return None
