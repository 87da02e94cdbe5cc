"""Off-line evaluation of a routing policy from the journal: `bosun router evaluate`.

Every learned decision journals its features, the candidate the policy drew first and
the probability it had (`ModelRouted.features`, `.first`, `.propensity`); rewards are in
`router_feedback`. From those, for a target policy π (the current shared model, greedy
or not, at any price of cost; or always one candidate):

- IPS: mean of π(a|x)/p(a|x) · r, unbiased when every p > 0 (the floor
  `min_propensity` sees to that);
- SNIPS: the same, normalised by the sum of the weights (less variance);
- DR (doubly robust): a reward model q̂ (ridge regression per candidate fitted on the log)
  plus the IPS-weighted correction r - q̂(x, a): unbiased if either is right.

Decisions that fell back (the first pick failed) are left out: their reward belongs to
another candidate than the one the policy drew.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from bosun.routing.bandit import LinearThompson, Sparse
from bosun.routing.rewards import learned_decisions
from bosun.store.base import Store


@dataclass(frozen=True)
class Logged:
    x: Sparse
    arm: str
    propensity: float
    reward: float  # quality minus the price of the call's cost


Policy = Callable[[Sparse], Sequence[float]]  # probabilities over `arms`


def estimates(log: Sequence[Logged], arms: Sequence[str], target: Policy, dims: int) -> dict:
    """IPS, SNIPS and DR estimates of `target`'s mean reward on `log`, and the log's own."""
    if not log:
        return {"decisions": 0}
    q = LinearThompson(list(arms), dims)
    for d in log:
        if d.arm in arms:
            q.update(list(arms).index(d.arm), d.x, d.reward)
    ips, weights, dr = [], [], []
    for d in log:
        if d.arm not in arms:
            continue
        probs = np.asarray(target(d.x), dtype=float)
        a = list(arms).index(d.arm)
        w = probs[a] / max(d.propensity, 1e-9)
        mean, _ = q.predict(d.x)
        ips.append(w * d.reward)
        weights.append(w)
        dr.append(float(probs @ mean) + w * (d.reward - float(mean[a])))
    n = len(ips)
    return {
        "decisions": n,
        "logged": round(float(np.mean([d.reward for d in log])), 4),
        "ips": round(float(np.sum(ips) / n), 4),
        "snips": round(float(np.sum(ips) / max(np.sum(weights), 1e-9)), 4),
        "dr": round(float(np.mean(dr)), 4),
    }


async def logged(store: Store, route: str, tenant: str, cost_price: float) -> list[Logged]:
    """The route's learned decisions in `tenant`'s runs that have rewards (their mean)."""
    by_run: dict[str, list[float]] = {}
    for f in await store.feedback(tenant=tenant):
        by_run.setdefault(f.run_id, []).append(f.score)
    out: list[Logged] = []
    for run_id, scores in by_run.items():
        events = [e for _, e in await store.events(run_id)]
        quality = sum(scores) / len(scores)
        costs = {e.step: e.cost for e in events if getattr(e, "kind", "") == "model_responded"}
        for d in learned_decisions(events):
            if d.route != route or d.first != d.chosen:
                continue
            reward = quality - cost_price * costs.get(d.step, 0.0)
            x = tuple((int(i), float(v)) for i, v in d.features)
            out.append(Logged(x, d.chosen, d.propensity, reward))
    return out


def always(arms: Sequence[str], name: str) -> Policy:
    probs = [1.0 if a == name else 0.0 for a in arms]
    return lambda x: probs


def greedy(
    model: LinearThompson, arms: Sequence[str], costs: dict[str, float], cost_price: float
) -> Policy:
    """The model's greedy choice (no exploration) at `cost_price`."""
    model = model.with_arms(arms)
    cost = np.array([costs.get(a, 0.0) for a in arms])

    def policy(x: Sparse) -> list[float]:
        mean, _ = model.predict(x)
        probs = [0.0] * len(arms)
        probs[int(np.argmax(mean - cost_price * cost))] = 1.0
        return probs

    return policy
