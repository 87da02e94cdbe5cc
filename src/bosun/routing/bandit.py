"""The learning router's model: linear Thompson sampling over hashed request features.

Why this one (docs/routing.md says more): rewards arrive late and from elsewhere (a
person's score, an approval, a veto), so the model must be a sum of per-reward updates
that any worker can apply in any order; Bayesian linear regression per candidate is
exactly that (A += x xᵀ, b += r x). Thompson sampling explores in proportion to what is
still uncertain, and, unlike LinUCB, is randomised, so every decision has a propensity
for off-line evaluation. Here the propensity is exact for two candidates (the score of
each is a 1-D normal: P = Phi(dmu / sd)) and estimated for more; it is mixed with a uniform
floor (`min_propensity`), which bounds exploration from below and keeps inverse
propensity weights bounded.

Each candidate's predicted quality is penalised by the price of its estimated cost
(`cost_price`, quality per dollar), so one knob moves the router along the
cost-quality curve. decide and update are O(K d²) with numpy (d = `dims`), microseconds.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

Sparse = Sequence[tuple[int, float]]


def dense(x: Sparse, dims: int) -> np.ndarray:
    out = np.zeros(dims)
    for i, v in x:
        out[int(i)] = v
    return out


@dataclass
class Choice:
    arm: int
    propensity: float
    probabilities: list[float]
    scores: list[float]  # posterior means minus cost, per arm (for the journal's "why")


@dataclass
class LinearThompson:
    arms: list[str]
    dims: int = 128
    prior: float = 1.0
    inv: np.ndarray = field(init=False)  # A⁻¹ per arm, kept by Sherman-Morrison updates
    b: np.ndarray = field(init=False)
    counts: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        k, d = len(self.arms), self.dims
        # A = prior·I + Σ x xᵀ is never inverted: its inverse is updated in O(d²) per
        # reward (a dxd inverse per decision would cost milliseconds, more under BLAS
        # threads contending for cores).
        self.inv = np.tile(np.eye(d) / self.prior, (k, 1, 1))
        self.b = np.zeros((k, d))
        self.counts = np.zeros(k)

    # -- the shared state's bytes ----------------------------------------------------------

    def to_bytes(self) -> bytes:
        out = io.BytesIO()
        np.savez(
            out,
            arms=np.array(self.arms),
            inv=self.inv,
            b=self.b,
            counts=self.counts,
            prior=np.array([self.prior]),
        )
        return out.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> LinearThompson:
        z = np.load(io.BytesIO(data), allow_pickle=False)
        model = cls([str(a) for a in z["arms"]], dims=z["inv"].shape[1], prior=float(z["prior"][0]))
        model.inv, model.b, model.counts = z["inv"].copy(), z["b"].copy(), z["counts"].copy()
        return model

    def with_arms(self, arms: Sequence[str]) -> LinearThompson:
        """This model over `arms` (a route whose candidates changed keeps what it learnt of
        the ones that stay; new ones start from the prior)."""
        if list(arms) == self.arms:
            return self
        fresh = LinearThompson(list(arms), self.dims, self.prior)
        for i, name in enumerate(arms):
            if name in self.arms:
                j = self.arms.index(name)
                fresh.inv[i], fresh.b[i], fresh.counts[i] = self.inv[j], self.b[j], self.counts[j]
        return fresh

    # -- learning -------------------------------------------------------------------------

    def update(self, arm: int, x: Sparse, reward: float) -> None:
        v = dense(x, self.dims)
        self.b[arm] += reward * v
        self.counts[arm] += 1
        inv = self.inv[arm]  # Sherman-Morrison: (A + v vᵀ)⁻¹ from A⁻¹
        u = inv @ v
        inv -= np.outer(u, u) / (1.0 + v @ u)

    def predict(self, x: Sparse) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation of each arm's quality at `x`."""
        v = dense(x, self.dims)
        u = self.inv @ v  # (k, d)
        mean = np.einsum("kd,kd->k", u, self.b)
        sd = np.sqrt(np.maximum(u @ v, 1e-12))
        return mean, sd

    # -- deciding -------------------------------------------------------------------------

    def decide(
        self,
        x: Sparse,
        costs: Sequence[float],
        allowed: Sequence[int],
        *,
        cost_price: float,
        exploration: float,
        min_propensity: float,
        rng: np.random.Generator,
    ) -> Choice:
        """Sample an arm among `allowed`; its propensity is the probability of that draw."""
        mean, sd = self.predict(x)
        allowed = list(allowed)
        mu = np.array([mean[i] - cost_price * costs[i] for i in allowed])
        sigma = np.array([sd[i] for i in allowed]) * exploration
        k = len(allowed)
        if k == 1:
            probs = np.ones(1)
        elif exploration <= 0:
            probs = np.zeros(k)
            probs[int(np.argmax(mu))] = 1.0
        elif k == 2:
            spread = math.sqrt(float(sigma @ sigma)) or 1e-12
            p0 = 0.5 * math.erfc(-(mu[0] - mu[1]) / spread / math.sqrt(2))
            probs = np.array([p0, 1.0 - p0])
        else:  # Monte Carlo over the arms' 1-D score distributions
            draws = rng.normal(mu, sigma, size=(512, k))
            probs = np.bincount(draws.argmax(axis=1), minlength=k) / 512.0
        floor = min(min_propensity, 1.0 / k) if k > 1 else 0.0
        probs = (1.0 - k * floor) * probs + floor
        pick = int(rng.choice(k, p=probs / probs.sum()))
        full = [0.0] * len(self.arms)
        for j, i in enumerate(allowed):
            full[i] = float(probs[j])
        return Choice(
            allowed[pick],
            float(probs[pick]),
            full,
            [round(float(mean[i] - cost_price * costs[i]), 4) for i in range(len(self.arms))],
        )

    def probabilities(
        self,
        x: Sparse,
        costs: Sequence[float],
        *,
        cost_price: float,
        exploration: float,
        min_propensity: float,
    ) -> list[float]:
        """The policy's probability of each arm at `x` (for off-line evaluation)."""
        rng = np.random.default_rng(0)
        return self.decide(
            x,
            costs,
            range(len(self.arms)),
            cost_price=cost_price,
            exploration=exploration,
            min_propensity=min_propensity,
            rng=rng,
        ).probabilities
