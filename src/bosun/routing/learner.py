"""The learning router's side of the store: one shared model per route (and per tenant
when pinned so), read by every worker, updated by every reward, paced to a budget.

Keys in `router_state` (compare-and-set rows, `store/router_sql.py`):
- `<route>`: the model (`LinearThompson`'s bytes) every tenant shares;
- `<route>/tenant/<t>`: a tenant's own model, once `bosun router pin --own` gave it one;
- `<route>/pin/<t>`: a tenant pinned to one candidate (no learning for it);
- `<route>/spend`: this hour's spend, for budget pacing.
Decisions read the model at most every `refresh` seconds (a second, by default), so a
step costs no query; updates always read, apply and compare-and-set, retrying when
another worker won (no update is lost).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from bosun.routing.bandit import LinearThompson, Sparse
from bosun.spec.route import Learn
from bosun.store.base import Store

REFRESH = 1.0
HOUR = 3600.0
PACE_FLOOR = 0.02  # the pace line starts at 2% of the hour's budget


@dataclass
class Decision:
    order: list[int]  # arm indexes, the first tried first
    policy: str
    propensity: float
    probabilities: list[float]
    scores: list[float]
    why: dict[int, str]


def model_key(route: str, tenant: str, own: bool) -> str:
    return f"{route}/tenant/{tenant}" if own else route


class Learner:
    def __init__(
        self,
        store: Store | None,
        route: str,
        arms: Sequence[str],
        learn: Learn,
        *,
        dims: int = 128,
        seed: int | None = None,
        clock: Callable[[], float] = time.time,
        refresh: float = REFRESH,
    ):
        self.store, self.route, self.arms, self.learn = store, route, list(arms), learn
        self.dims, self.clock, self.refresh = dims, clock, refresh
        self.rng = np.random.default_rng(seed)
        self._cache: dict[str, tuple[float, LinearThompson, int]] = {}
        self._meta: dict[str, tuple[float, bytes | None]] = {}
        self.local = LinearThompson(self.arms, dims, learn.prior)  # without a store

    # -- reading -------------------------------------------------------------------------

    async def _row(self, key: str) -> tuple[int, bytes] | None:
        return None if self.store is None else await self.store.router_state(key)

    async def model(self, key: str) -> tuple[LinearThompson, int]:
        if self.store is None:
            return self.local, 0
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and now - cached[0] < self.refresh:
            return cached[1], cached[2]
        row = await self.store.router_state(key)
        if row is None:
            model, version = LinearThompson(self.arms, self.dims, self.learn.prior), 0
        else:
            model, version = LinearThompson.from_bytes(row[1]).with_arms(self.arms), row[0]
        self._cache[key] = (now, model, version)
        return model, version

    async def _small(self, key: str) -> bytes | None:
        """A small row (a pin, the spend), cached like the model."""
        now = time.monotonic()
        cached = self._meta.get(key)
        if cached is not None and now - cached[0] < self.refresh:
            return cached[1]
        row = await self._row(key)
        value = row[1] if row else None
        self._meta[key] = (now, value)
        return value

    async def model_key_for(self, tenant: str) -> str:
        own = await self._small(f"{self.route}/own/{tenant}")
        return model_key(self.route, tenant, own is not None)

    # -- deciding ------------------------------------------------------------------------

    async def decide(
        self, tenant: str, x: Sparse, costs: Sequence[float], allowed: Sequence[int]
    ) -> Decision:
        why: dict[int, str] = {}
        pin = await self._small(f"{self.route}/pin/{tenant}")
        if pin is not None and pin.decode() in self.arms:
            arm = self.arms.index(pin.decode())
            if arm in allowed:
                rest = [i for i in allowed if i != arm]
                return Decision([arm, *rest], "pinned", 1.0, [], [], {arm: "pinned"})
        policy = "learned"
        allowed = list(allowed)
        if self.learn.budget_per_hour is not None:
            allowed, paced = await self._paced(allowed, costs, why)
            policy = "paced" if paced else policy
        model, _ = await self.model(await self.model_key_for(tenant))
        choice = model.decide(
            x,
            costs,
            allowed,
            cost_price=self.learn.cost_price,
            exploration=self.learn.exploration,
            min_propensity=self.learn.min_propensity,
            rng=self.rng,
        )
        rest = sorted((i for i in allowed if i != choice.arm), key=lambda i: -choice.scores[i])
        return Decision(
            [choice.arm, *rest],
            policy,
            choice.propensity,
            choice.probabilities,
            choice.scores,
            why,
        )

    # -- budget pacing -------------------------------------------------------------------

    async def spend(self) -> tuple[float, float]:
        """(start of this hour's window, dollars spent in it)."""
        raw = await self._small(f"{self.route}/spend")
        start, spent = json.loads(raw) if raw else (self.clock(), 0.0)
        if self.clock() - start >= HOUR:
            return self.clock(), 0.0
        return float(start), float(spent)

    async def _paced(
        self, allowed: list[int], costs: Sequence[float], why: dict[int, str]
    ) -> tuple[list[int], bool]:
        """Keep spend on the pace line: the hour's budget spread evenly over the hour. A
        candidate whose estimated cost would put spend ahead of it is dropped, unless
        nothing cheaper is left (governance's spend caps are the hard stop)."""
        budget = float(self.learn.budget_per_hour or 0.0)
        start, spent = await self.spend()
        elapsed = max(0.0, self.clock() - start)
        line = budget * max(PACE_FLOOR, min(1.0, elapsed / HOUR))
        keep = [i for i in allowed if spent + costs[i] <= line]
        if not keep:
            keep = [min(allowed, key=lambda i: costs[i])]
        for i in allowed:
            if i not in keep:
                why[i] = f"paced: ${spent:.4f} spent of ${line:.4f} so far this hour"
        return keep, len(keep) < len(allowed)

    async def spent(self, dollars: float) -> None:
        """Add a call's cost to this hour's spend (every worker's, one row)."""
        if self.learn.budget_per_hour is None or dollars <= 0:
            return
        key = f"{self.route}/spend"
        if self.store is None:
            start, spent = await self.spend()
            self._meta[key] = (time.monotonic(), json.dumps([start, spent + dollars]).encode())
            return
        for _ in range(20):
            row = await self.store.router_state(key)
            now = self.clock()
            start, spent = json.loads(row[1]) if row else (now, 0.0)
            if now - start >= HOUR:
                start, spent = now, 0.0
            data = json.dumps([start, spent + dollars]).encode()
            if await self.store.router_state_put(key, row[0] if row else 0, data):
                self._meta[key] = (time.monotonic(), data)
                return

    # -- learning ------------------------------------------------------------------------

    async def update(self, tenant: str, arm: str, x: Sparse, reward: float) -> None:
        await update_model(
            self.store,
            await self.model_key_for(tenant),
            arm,
            x,
            reward,
            dims=self.dims,
            prior=self.learn.prior,
            local=self.local,
        )
        self._cache.clear()


async def update_model(
    store: Store | None,
    key: str,
    arm: str,
    x: Sparse,
    reward: float,
    *,
    dims: int = 128,
    prior: float = 1.0,
    local: LinearThompson | None = None,
    arms: Sequence[str] = (),
) -> None:
    """Apply one reward to the shared model `key` (compare-and-set, retried)."""
    if store is None:
        if local is not None:
            if arm not in local.arms:
                return
            local.update(local.arms.index(arm), x, reward)
        return
    for _ in range(50):
        row = await store.router_state(key)
        if row is None:
            model, version = LinearThompson(list(arms) or [arm], dims, prior), 0
        else:
            model, version = LinearThompson.from_bytes(row[1]), row[0]
        if arm not in model.arms:
            model = model.with_arms([*model.arms, arm])
        model.update(model.arms.index(arm), x, reward)
        if await store.router_state_put(key, version, model.to_bytes()):
            return
    raise RuntimeError(f"router state {key!r}: too many concurrent updates")
