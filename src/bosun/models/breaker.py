"""Circuit breakers for model endpoints and tools.

Closed: calls pass. After `failure_threshold` consecutive failures the breaker
opens: calls fail at once without reaching the endpoint. After `reset_after`
seconds it lets one probe call through (half-open); success closes it, failure
opens it again. State lives in this process: each worker protects itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


@dataclass(slots=True)
class CircuitBreaker:
    name: str
    failure_threshold: int = 5
    reset_after: float = 30.0
    clock: Callable[[], float] = time.monotonic
    failures: int = 0
    opened_at: float | None = None
    probing: bool = False
    state: str = field(default=CLOSED)

    def allow(self) -> bool:
        """May a call go through now? In half-open state, only one probe at a time."""
        if self.state == CLOSED:
            return True
        if self.state == OPEN and self.opened_at is not None:
            if self.clock() - self.opened_at < self.reset_after:
                return False
            self.state = HALF_OPEN
            self.probing = False
        if self.state == HALF_OPEN and not self.probing:
            self.probing = True
            return True
        return False

    def success(self) -> None:
        self.failures = 0
        self.state = CLOSED
        self.opened_at = None
        self.probing = False

    def failure(self) -> None:
        self.failures += 1
        self.probing = False
        if self.state == HALF_OPEN or self.failures >= self.failure_threshold:
            self.state = OPEN
            self.opened_at = self.clock()


class Breakers:
    """One breaker per name (e.g. `tool:issue_refund`, `model:https://api.example/v1 gpt-4o`)."""

    def __init__(self, failure_threshold: int = 5, reset_after: float = 30.0):
        self.failure_threshold = failure_threshold
        self.reset_after = reset_after
        self._breakers: dict[str, CircuitBreaker] = {}

    def get(self, name: str) -> CircuitBreaker:
        breaker = self._breakers.get(name)
        if breaker is None:
            breaker = CircuitBreaker(name, self.failure_threshold, self.reset_after)
            self._breakers[name] = breaker
        return breaker

    def open_ones(self) -> list[str]:
        return [n for n, b in self._breakers.items() if b.state != CLOSED]
