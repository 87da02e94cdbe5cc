"""CloudEvents a workflow run emits, for whoever starts other workflows from them.

An `emit` task is a tool call (`tools.emit`, effect `write`); its CloudEvent is that
call's journaled result. `on_emit(rt, fn)` calls `fn(run_id, event)` for each one once
its `ToolFinished` is committed (a journal listener: cheap, never raising; queue the
work). The event's `id` is `<run id>:<call id>`, the same if a crash replays the call:
use it as the idempotency key of what it starts. The store also writes each one to its
outbox in that same commit (`bosun.journal.emitted`), which event triggers sweep: the
listener is a fast path, never the only one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from bosun.journal.emitted import cloud_event
from bosun.journal.events import Event

log = logging.getLogger("bosun.workflow")


def emitted(events: Sequence[Event]) -> Iterator[dict[str, Any]]:
    """The CloudEvents among committed events."""
    for event in events:
        cloud = cloud_event(event)
        if cloud is not None:
            yield cloud


def on_emit(runtime: Any, fn: Callable[[str, dict[str, Any]], None]) -> None:
    """Call `fn(run_id, cloud_event)` for every CloudEvent a run driven by `runtime` emits."""

    def listener(run_id: str, first_seq: int, events: Sequence[Event]) -> None:
        for cloud in emitted(events):
            try:
                fn(run_id, cloud)
            except Exception:  # a listener never breaks the run that emitted
                log.exception("on_emit listener failed for %s", cloud.get("id"))

    runtime.journal.listen(listener)


__all__ = ["emitted", "on_emit"]
