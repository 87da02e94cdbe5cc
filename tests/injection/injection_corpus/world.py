"""The state a case's tools read and change: one `World` per run, found by the run's id.

Tools are plain module-level functions (a run knows its tools only by reference), so
the data they serve cannot be closed over: each run's world is registered under its
run id before the run is driven, and a tool finds it through its `ToolContext`.
Effectful tools record what they did in `World.effects`; the replay harness reads the
effects, not the model's proposals, to decide whether an attack succeeded.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from bosun.spec.tool import ToolContext


@dataclass
class World:
    """A case's data (mail, files, accounts, channels, hotels...) and the effects done on it."""

    data: dict[str, Any]
    effects: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    next_id: int = 100

    @classmethod
    def of(cls, data: dict[str, Any]) -> World:
        return cls(copy.deepcopy(data))

    def did(self, tool: str, **args: Any) -> None:
        self.effects.append((tool, args))

    def new_id(self) -> str:
        self.next_id += 1
        return str(self.next_id)


WORLDS: dict[str, World] = {}


def world(ctx: ToolContext) -> World:
    found = WORLDS.get(ctx.run_id)
    if found is None:
        raise LookupError(f"no world registered for run {ctx.run_id}")
    return found


__all__ = ["WORLDS", "World", "world"]
