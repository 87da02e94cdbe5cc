"""A session's turns as people may see them: each run's input and answer masked by that
run's own redactor (what its journal taught it), for every edge (CLI, API, console).
The model itself is given the turns unmasked, like the run's own conversation."""

from __future__ import annotations

import dataclasses

from bosun.memory.sessions import Turn
from bosun.observe.shown import shown
from bosun.store.base import Store


async def shown_turns(store: Store, turns: list[Turn]) -> list[Turn]:
    out: list[Turn] = []
    for turn in turns:
        run = await store.get_run(turn.run_id)
        if run is None:
            continue
        row, _ = shown(run, await store.events(turn.run_id))
        out.append(dataclasses.replace(turn, input=row.input, output=row.output))
    return out
