"""One call's whole result, for every edge (`bosun show RUN --call ID --full`, the API's
`GET /api/runs/{id}/calls/{call_id}/result`).

The journal keeps what the model saw; when that was an excerpt, `ToolFinished.full`
references the whole as an artifact (`bosun.store.artifacts`), read here from the run's
tenant. A call whose result was not cut has no artifact: its whole is the journaled
result, as JSON (a string result as its text).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from bosun.errors import ResultNotFound
from bosun.journal.calls import calls
from bosun.journal.events import Event, ToolFinished
from bosun.store.artifacts import ArtifactStore


async def whole_result(
    store: ArtifactStore, tenant: str, events: Sequence[tuple[int, Event]], call_id: str
) -> tuple[str, bytes]:
    """(MIME type, bytes) of the whole result of `call_id` (see the module docstring)."""
    call = next((c for c in calls(events) if c.call_id == call_id), None)
    if call is None:
        raise ResultNotFound(
            f"the run has no tool call {call_id!r}: `bosun show RUN --calls` lists them"
        )
    ended = call.ended
    if not isinstance(ended, ToolFinished):
        raise ResultNotFound(f"tool call {call_id} ({call.tool}) has no result: {call.outcome}")
    if ended.full is None:
        return _journaled(ended.result)
    found = await store.artifact(tenant, ended.full["artifact"])
    if found is None:
        raise ResultNotFound(
            f"the whole result of call {call_id} ({ended.full['artifact']}) is no longer "
            "stored (collected by `bosun gc`); the journal keeps the excerpt the model saw"
        )
    return found


def _journaled(result: Any) -> tuple[str, bytes]:
    if isinstance(result, str):
        return "text/plain; charset=utf-8", result.encode()
    return "application/json", orjson.dumps(result)


__all__ = ["ResultNotFound", "whole_result"]
