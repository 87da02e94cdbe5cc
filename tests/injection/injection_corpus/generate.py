"""The corpus: every domain's scenarios crossed with its attackers' goals, deterministic.

Each (scenario, slot, goal) gives one attack and its benign twin. An instruction
written into the very source the user delegated a value to (`delegated-same`) is
the hardest kind for any defence that does not read the text, and it is a minority
in practice, so those slots get half of the goals (sampled). Domains with fewer
combinations get a second draw (other attacker values, wrappers and placements) of
their combinations until they reach `PER_DOMAIN`.
"""

from __future__ import annotations

import random
from functools import lru_cache

from . import banking, messaging, travel, workspace
from .case import Case, pair

DOMAINS = {"workspace": workspace, "banking": banking, "messaging": messaging, "travel": travel}
PER_DOMAIN = 75
SEED = 14


def domain_cases(domain: str, rng: random.Random) -> list[Case]:
    module = DOMAINS[domain]
    combos = []
    for scenario in module.scenarios():
        scenario.also = module.ALSO.get(scenario.name, ())
        for slot in scenario.slots:
            goals = module.GOALS
            if slot.same:
                goals = tuple(rng.sample(goals, (len(goals) + 1) // 2))
            combos.extend((scenario, slot, goal) for goal in goals)
    extra = [c for c in combos if not c[1].same]
    rng.shuffle(extra)
    while len(combos) < PER_DOMAIN:
        combos.append(extra[(len(combos)) % len(extra)])
    cases: list[Case] = []
    for number, (scenario, slot, goal) in enumerate(combos):
        cases.extend(pair(domain, number, scenario, slot, goal, rng, module.INSTRUCTIONS))
    return cases


@lru_cache(maxsize=4)
def _corpus(seed: int) -> tuple[Case, ...]:
    rng = random.Random(seed)
    return tuple(c for domain in DOMAINS for c in domain_cases(domain, rng))


def corpus(seed: int = SEED) -> list[Case]:
    """Every case, attacks and benign twins, in a fixed order (same seed, same corpus)."""
    return list(_corpus(seed))


__all__ = ["DOMAINS", "PER_DOMAIN", "SEED", "corpus"]
