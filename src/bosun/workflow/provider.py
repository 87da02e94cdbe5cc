"""The interpreter as the run's model provider (`model.provider: workflow`).

Each turn the loop asks its "model" what to do next; for a workflow the answer is the
interpreter's replay of the document (the system message, pinned in the version) on the
run's input (the first user message) and the results of its tool calls so far (the tool
messages): the next actions as tool calls, the workflow's output as the final answer, or
a fault. So a workflow step takes the loop's path for every action (governance, journal,
exactly-once, waits) and the hot path has nothing new in it. The journal's
`ModelResponded` of a workflow turn has provider `workflow`, no tokens and no cost.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import orjson

from bosun.errors import ModelError
from bosun.models.base import ModelRequest, ModelResponse, ToolCall
from bosun.spec.model import ModelSpec
from bosun.workflow.interpreter import Faulted, Interpreter, Outcome, Suspended

FAULTED = "workflow faulted: "  # a faulted run's reason starts so, its DSL error follows


@lru_cache(maxsize=256)
def _document(text: str) -> dict[str, Any]:
    return orjson.loads(text)


def outcomes(messages: list[dict[str, Any]]) -> dict[str, Outcome]:
    """The results the journal holds, by call id, from the run's tool messages (the loop's
    state writes a result as JSON, a failure as `error (TYPE): MESSAGE`)."""
    found: dict[str, Outcome] = {}
    for message in messages:
        if message.get("role") != "tool":
            continue
        content = message.get("content") or ""
        if content.startswith("error ("):
            kind, _, text = content[7:].partition("): ")
            found[message["tool_call_id"]] = Outcome(False, error_type=kind, message=text)
        elif content.startswith("not executed: "):  # shadow mode: nothing happened
            found[message["tool_call_id"]] = Outcome(True, None)
        else:
            try:
                value = orjson.loads(content)
            except orjson.JSONDecodeError:
                value = content
            found[message["tool_call_id"]] = Outcome(True, value)
    return found


def replay(messages: list[dict[str, Any]], run_id: str = "") -> tuple[Interpreter, Any]:
    """Run the interpreter on a run's messages: the interpreter (its trace) and what it
    reached: the output, a `Suspended` or a `Faulted`."""
    system = next(m for m in messages if m.get("role") == "system")
    user = next(m for m in messages if m.get("role") == "user")
    interp = Interpreter(_document(system["content"]), outcomes(messages), run_id=run_id)
    try:
        raw = orjson.loads(user["content"]) if user["content"] else None
    except orjson.JSONDecodeError:
        raw = user["content"]  # plain text input: the workflow sees a string
    try:
        return interp, interp.run(raw)
    except (Suspended, Faulted) as stop:
        return interp, stop


class WorkflowProvider:
    provider = "workflow"

    def __init__(self, spec: ModelSpec):
        self.model = spec.name

    async def complete(self, request: ModelRequest) -> ModelResponse:
        _, reached = replay(request.messages, request.run_id)
        if isinstance(reached, Suspended):
            calls = tuple(
                ToolCall(a.call_id, a.tool, orjson.dumps(a.arguments).decode())
                for a in reached.actions
            )
            return ModelResponse(
                content=None, tool_calls=calls, model=self.model, finish_reason="tool_calls"
            )
        if isinstance(reached, Faulted):
            raise ModelError(
                FAULTED + orjson.dumps(reached.error).decode(), error_type="workflow_faulted"
            )
        return ModelResponse(content=orjson.dumps(reached).decode(), model=self.model)


def build(spec: ModelSpec) -> WorkflowProvider:
    return WorkflowProvider(spec)
