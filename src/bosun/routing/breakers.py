"""Model endpoints' circuit breakers for routes, shared by every worker on the store.

The same rows as tools' breakers (`govern/breakers.py`, `Store.breaker_*`), keyed
`model:<endpoint>` (provider, base URL, model: never a key), so an endpoint that fails in
one worker is skipped by all, and once `reset_after` has passed exactly one worker probes
it. Without a store (a provider built outside a Runtime) each process keeps its own
(`models/breaker.py`).
"""

from __future__ import annotations

from bosun.models.breaker import Breakers
from bosun.store.base import Store

FAILURE_THRESHOLD = 3
RESET_AFTER = 30.0


class ModelBreakers:
    def __init__(
        self,
        store: Store | None = None,
        *,
        failure_threshold: int = FAILURE_THRESHOLD,
        reset_after: float = RESET_AFTER,
    ):
        self.store = store
        self.failure_threshold = failure_threshold
        self.reset_after = reset_after
        self.local = Breakers(failure_threshold, reset_after)

    async def allow(self, key: str) -> bool:
        if self.store is None:
            return self.local.get(key).allow()
        failing = {b.key: b for b in await self.store.breakers()}
        breaker = failing.get(key)
        if breaker is None or breaker.opened_at is None:
            return True
        return await self.store.breaker_probe(key, reset_after=self.reset_after)

    async def success(self, key: str) -> None:
        if self.store is None:
            self.local.get(key).success()
        else:
            await self.store.breaker_success(key)

    async def failure(self, key: str) -> bool:
        if self.store is None:
            breaker = self.local.get(key)
            breaker.failure()
            return breaker.state != "closed"
        return await self.store.breaker_failure(key, threshold=self.failure_threshold)
