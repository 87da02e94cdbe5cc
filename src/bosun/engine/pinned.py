"""Before a call reaches its source: is the source there, and is the tool still the one
the run's agent version pinned? (The rug-pull defence; see docs/tools.md.)

A run is governed by the definitions its version was registered with: the description
and schema the model was shown, the effect and trust policy decided on. A source that
now serves something else under the tool's name (a rewritten description, a wider
schema, a tool that vanished) is reported once per run (`ToolDefinitionChanged`,
audited, and a warning in the worker's log) and each call of that tool is refused with
`definition_changed`, a `ToolFailed` the model sees: the run goes on, the tool is not
called, until a new agent version is registered (which pins the new definition).
"""

from __future__ import annotations

from bosun.engine.state import CallState
from bosun.errors import SourceUnavailable
from bosun.journal.events import Event, ToolDefinitionChanged, ToolFailed
from bosun.journal.text import clean_text
from bosun.spec.definition import Pin
from bosun.tools.sources import SourcePool


async def source_refusal(
    sources: SourcePool, pin: Pin, call: CallState, version: str, reported: set[str]
) -> list[Event]:
    """The events refusing this call, or [] when it may go to its source. `reported` holds
    the tools whose change this run has journaled already (each is reported once).
    Costs two dict lookups once the source is open."""
    try:
        changed, live = await sources.changed(pin)
    except SourceUnavailable as exc:
        return [
            ToolFailed(
                call_id=call.call_id,
                tool=call.tool,
                error_type="source_unavailable",
                message=clean_text(str(exc)),
            )
        ]
    if not changed:
        return []
    events: list[Event] = []
    if call.tool not in reported:
        reported.add(call.tool)
        events.append(
            ToolDefinitionChanged(
                call_id=call.call_id,
                tool=call.tool,
                source=f"{pin.source.kind}:{pin.source.identity}",
                pinned_digest=pin.digest,
                live_digest=live,
                agent_version=version,
            )
        )
    what = "no longer serves it" if live is None else "now defines it otherwise"
    events.append(
        ToolFailed(
            call_id=call.call_id,
            tool=call.tool,
            error_type="definition_changed",
            message=f"{call.tool} is not available: its source {what} than agent version "
            f"{version} pinned, so it is not called until a new version of the agent is "
            "registered",
        )
    )
    return events


__all__ = ["source_refusal"]
