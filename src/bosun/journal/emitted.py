"""Which committed event is a CloudEvent a run emitted (a workflow's `emit` task).

Why in the journal layer: the stores write each emit to their outbox (`trigger_emits`) in
the same commit as its `ToolFinished`, and the workflow layer hands the same events to its
listeners; both must agree on what an emit is.
"""

from __future__ import annotations

from typing import Any

from bosun.journal.events import Event, ToolFinished

EMIT_TOOL = "emit"


def cloud_event(event: Event) -> dict[str, Any] | None:
    """The CloudEvent `event` carries, or None (nearly every event: one string compare)."""
    if event.kind != "tool_finished":
        return None
    assert isinstance(event, ToolFinished)
    result = event.result
    if (
        event.tool == EMIT_TOOL
        and isinstance(result, dict)
        and "specversion" in result
        and "bosunrun" in result
        and isinstance(result.get("id"), str)
    ):
        return result
    return None
