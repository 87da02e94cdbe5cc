"""Circuit breakers for tools, shared by every worker on the database.

A breaker protects a tool's endpoint from being hammered while it is down, and the runs
from waiting on it. Three rules make it fair:

- **Only the tool's own failures count**: a timeout, a connection error, an exception of
  the tool. An exception saying the *call* was wrong (`ValueError`, `TypeError`,
  `LookupError`: a bad id, a bad amount) goes back to the model and counts nothing, so
  one run's bad arguments never open a breaker.
- **Keyed per tenant, agent and tool** (`breaker_key`): one agent's misuse cannot block
  another agent, nor another tenant.
- **Shared**: the state lives in the database (`Store.breaker_*`); every commit hands the
  step loop the breakers that are failing (`AppendResult.breakers`, almost always none), so
  a breaker opened by one worker holds in all at their next step, and one worker at a time
  probes it once `reset_after` has passed.
"""

from __future__ import annotations

from collections.abc import Mapping

from bosun.store.base import Breaker, Store

FAILURE_THRESHOLD = 5  # failures in a row that open a breaker
RESET_AFTER = 30.0  # seconds an open breaker refuses calls before one probe goes through


def breaker_key(tenant: str, agent: str, tool: str) -> str:
    return f"tool:{tenant}:{agent}:{tool}"


class ToolBreakers:
    """The step loop's side of the shared breakers."""

    def __init__(
        self,
        store: Store,
        *,
        failure_threshold: int = FAILURE_THRESHOLD,
        reset_after: float = RESET_AFTER,
    ):
        self.store = store
        self.failure_threshold = failure_threshold
        self.reset_after = reset_after

    async def allow(self, key: str, known: Mapping[str, Breaker]) -> bool:
        """Whether a call may go now, given the breakers the latest commit returned."""
        breaker = known.get(key)
        if breaker is None or breaker.opened_at is None:
            return True
        return await self.store.breaker_probe(key, reset_after=self.reset_after)

    async def success(self, key: str, known: Mapping[str, Breaker]) -> None:
        if key in known:  # it was failing (here or in another worker): it works again
            await self.store.breaker_success(key)

    async def failure(self, key: str) -> bool:
        """Count a failure of the tool itself; True if the breaker is open now."""
        return await self.store.breaker_failure(key, threshold=self.failure_threshold)
