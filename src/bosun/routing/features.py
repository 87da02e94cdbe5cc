"""What a route knows about a request: named features for its rules (CEL) and a hashed
vector for the learning router.

The vector is a bias, the request's words hashed into buckets (stable
across processes: crc32, never Python's salted `hash`), the log of the context length,
the step's kind, the agent, and how many numbers and sentences the text holds. It is sparse and journaled with each decision as
`(index, value)` pairs, so a policy learned later can be evaluated on the same inputs.
With `learn: {embed: true}` the request's embedding (the runtime's embedder, the memory
issue's: `bosun.memory.embed`) is projected by a fixed random matrix (seeded: the same in
every process) onto the vector's last `embed_dims` coordinates; the tags (`topic=...`) are
hashed like words. The hashing trick keeps decide and update at O(d²) with d fixed.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

WORD = re.compile(r"[a-z]{3,}")  # words of three letters or more: fewer function words
NUMBER = re.compile(r"\d+(?:\.\d+)?")
KINDS = ("first", "after_tool", "reply")
# bias, context length, step kinds (3), agent (3), numbers, sentences; then text buckets
RESERVED = 10


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def request_features(
    messages: list[dict[str, Any]], turn: int, context: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The names a route's rules read: `agent`, `tenant`, `tier`, `tags`, `step_kind`
    (`first` for the run's first model call, `after_tool` after tool results, `reply`
    otherwise), `context_tokens` (estimated: characters / 4), `turn`, `text` (the
    run's input: its first user message)."""
    ctx = dict(context or {})
    chars = sum(len(_text(m.get("content"))) for m in messages)
    last = messages[-1].get("role") if messages else None
    kind = "first" if turn == 0 else ("after_tool" if last == "tool" else "reply")
    text = next((_text(m.get("content")) for m in messages if m.get("role") == "user"), "")
    tags = {str(k): str(v) for k, v in (ctx.get("tags") or {}).items()}
    return {
        "agent": str(ctx.get("agent", "")),
        "tenant": str(ctx.get("tenant", "default")),
        "tier": str(ctx.get("tier") or tags.get("tier", "")),
        "tags": tags,
        "step_kind": kind,
        "context_tokens": chars // 4,
        "turn": turn,
        "text": text,
    }


def _bucket(token: str, dims: int) -> int:
    return RESERVED + zlib.crc32(token.encode()) % (dims - RESERVED)


@lru_cache(maxsize=8)
def _projection(size: int, out: int) -> Any:
    """A fixed Gaussian projection (seed 0: PCG64 draws are stable across processes and
    numpy versions), scaled so a unit vector stays about unit length."""
    import numpy as np

    return np.random.default_rng(0).standard_normal((size, out)) / math.sqrt(out)


def projected(embedding: Sequence[float], out: int) -> list[float]:
    """`embedding` (unit length) on `out` coordinates, rounded as the journal keeps them."""
    import numpy as np

    e = np.asarray(embedding, dtype=float)
    return [round(float(v), 4) for v in e @ _projection(len(e), out)]


def _centred(value: float, centre: float, spread: float) -> float:
    """A count's log, centred and scaled to about [-1, 1] (clipped at 2), so the ridge
    prior does not shrink it away beside the bias."""
    return round(max(-2.0, min(2.0, (value - centre) / spread)), 4)


def vector(
    features: Mapping[str, Any],
    dims: int,
    text_weight: float = 1.0,
    embedding: Sequence[float] | None = None,
    *,
    tag_weight: float = 0.0,
) -> list[tuple[int, float]]:
    """The sparse hashed vector of `features` (sorted by index); the words' part has length
    `text_weight` (0: no words, for requests whose words do not tell them apart). A
    projected `embedding` (see `projected`) takes the last coordinates, the hashed words
    the ones between; with `tag_weight`, each tag `k=v` is one more hashed token of that
    weight (a request's topic, when the caller knows it)."""
    text = str(features.get("text", ""))
    top = dims - (len(embedding) if embedding is not None else 0)
    if top <= RESERVED:
        raise ValueError(f"dims {dims} leave no room beside an embedding of {dims - top}")
    counts: dict[int, float] = {}
    for token in (
        WORD.findall(text.lower()) if text_weight else ()
    ):  # word pairs helped less than they cost
        i = _bucket(token, top)
        counts[i] = counts.get(i, 0.0) + 1.0
    norm = math.sqrt(sum(v * v for v in counts.values())) or 1.0
    out = {i: round(text_weight * v / norm, 4) for i, v in counts.items()}
    if tag_weight:
        for k, v in sorted((features.get("tags") or {}).items()):
            i = _bucket(f"tag:{k}={v}", top)
            out[i] = round(out.get(i, 0.0) + tag_weight, 4)
    if embedding is not None:
        for j, v in enumerate(embedding):
            if v:
                out[top + j] = float(v)
    out[0] = 1.0
    out[1] = _centred(math.log2(1 + int(features.get("context_tokens", 0))), 6.0, 2.0)
    kind = features.get("step_kind", "first")
    out[2 + KINDS.index(kind) if kind in KINDS else 4] = 1.0
    if agent := features.get("agent"):
        out[5 + zlib.crc32(str(agent).encode()) % 3] = 1.0
    # How much arithmetic and how many steps the request holds: what tells a hard word
    # problem from an easy one when the words alone do not (GSM8K).
    out[8] = _centred(math.log2(1 + len(NUMBER.findall(text))), 2.0, 1.5)
    out[9] = _centred(math.log2(1 + text.count(".") + text.count("?")), 2.0, 1.5)
    return sorted(out.items())
