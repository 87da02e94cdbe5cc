"""What the edges show of a run: its journal and its row, redacted in one place.

Every edge (`bosun show` and `bosun trace`, the API, the console) reads a run through
here or through `bosun.server.ops` (which adds tenants and roles on top of the same two
functions), never the raw records: the journal's events through the run's pinned
`Redactor`, and the row's free texts (input, output, reason) masked by what that
journal taught it (a secret a tool was given and the answer quoted back). The calls
are then `bosun.journal.calls.calls(events)` of these events.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from bosun.journal.events import Event
from bosun.journal.redact import Redactor
from bosun.store.base import RunRecord

ROW_TEXTS = ("input", "output", "reason")


def masked_row(run: RunRecord, redactor: Redactor) -> RunRecord:
    """`run` with its texts masked by what `redactor` has learnt (the same row if none)."""
    masked = {k: redactor.text(getattr(run, k)) for k in ROW_TEXTS}
    if any(masked[k] is not getattr(run, k) for k in ROW_TEXTS):
        return dataclasses.replace(run, **masked)
    return run


def shown(
    run: RunRecord, raw: Sequence[tuple[int, Event]]
) -> tuple[RunRecord, list[tuple[int, Event]]]:
    """The run's row and its whole journal `raw`, as people may see them."""
    redactor = Redactor.for_run(run.spec)
    events = redactor.events(raw)
    return masked_row(run, redactor), events
