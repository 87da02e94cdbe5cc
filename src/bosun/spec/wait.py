"""`bosun.Wait`: what a tool returns when its result comes from outside the run.

A tool that returns a `Wait` does not block a worker: the run parks (status `waiting`,
lease released, nothing held in memory) and the call stays open until the wait settles;
the wait's result then becomes the call's result, as if the tool had returned it. Exactly
one of `signal`, `child`, `remote` or `timer` says what is awaited:

    @tool
    def ask_the_warehouse(order: str) -> Wait:
        return Wait(signal="stock_checked", deadline=3600, on_deadline={"in_stock": None})

`deadline` (seconds from now) bounds any wait; at it the wait settles with `on_deadline`
(a timer's result is `on_deadline` too, at `timer` seconds).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from bosun.errors import SpecError
from bosun.spec.vocab import WaitKind


@dataclass(frozen=True)
class Wait:
    signal: str | None = None  # a named signal: `bosun signal RUN NAME --data JSON`
    child: str | None = None  # a run id: settles with the child's outcome when it ends
    remote: str | None = None  # a remote task id: settled by `Runtime.complete_remote`
    timer: float | None = None  # seconds: settles with `on_deadline` when they have passed
    deadline: float | None = None  # seconds from now; None: no deadline
    on_deadline: Any = None  # the result at the deadline (JSON)

    def __post_init__(self) -> None:
        given = [n for n in ("signal", "child", "remote", "timer") if getattr(self, n) is not None]
        if len(given) != 1:
            raise SpecError(
                "a Wait awaits exactly one thing: pass one of signal=, child=, remote= or"
                f" timer= (got {', '.join(given) or 'none'})"
            )
        if self.timer is not None and self.timer < 0:
            raise SpecError(f"Wait(timer=...) takes seconds >= 0, got {self.timer!r}")
        if self.deadline is not None and self.deadline < 0:
            raise SpecError(f"Wait(deadline=...) takes seconds >= 0, got {self.deadline!r}")
        try:
            orjson.dumps(self.on_deadline)
        except TypeError as exc:
            raise SpecError(f"Wait(on_deadline=...) must be JSON data: {exc}") from None

    @property
    def kind(self) -> WaitKind:
        if self.signal is not None:
            return WaitKind.SIGNAL
        if self.child is not None:
            return WaitKind.CHILD
        if self.remote is not None:
            return WaitKind.REMOTE
        return WaitKind.TIMER

    @property
    def key(self) -> str:
        return self.signal or self.child or self.remote or ""

    def deadline_at(self, now: float) -> float | None:
        """The absolute deadline: the timer's, or the earlier of it and `deadline`."""
        ends = [now + s for s in (self.timer, self.deadline) if s is not None]
        return min(ends) if ends else None


__all__ = ["Wait"]
