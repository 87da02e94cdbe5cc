"""Recall: hybrid lexical + vector search over current facts, settled by sources of truth.

1. Lexical: SQLite FTS5 (`bm25`) or PostgreSQL full-text search (`ts_rank`), the query's
   words OR-ed, within the run's scopes, current facts only.
2. Vector: the query's embedding against the tenant's fact embeddings, exact cosine in
   numpy (no pgvector on this server, and sqlite-vec needs a loadable-extension build of
   sqlite; see docs/memory.md), from an in-process matrix refreshed incrementally.
3. Hybrid: reciprocal rank fusion of the two lists (k = 60), the usual default.
4. Per key (`order:1234` / `status`), the value that wins: the newest from the source
   the operator declared for its kind (`order.status: lookup_order`), else the newest;
   the other current values are returned beside it as its conflicts.

Each result explains its score: the ranks and raw scores of both searches, the fusion,
why its value won, whether it is stale (past `valid_until`, or older than `max_age`).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from bosun.memory.facts import COLUMNS, Fact, Facts, fact_of

Mode = Literal["lexical", "vector", "hybrid"]
RRF_K = 60
_WORD = re.compile(r"[A-Za-z0-9]+")
_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "do",
        "for",
        "from",
        "has",
        "have",
        "how",
        "i",
        "in",
        "is",
        "it",
        "me",
        "my",
        "of",
        "on",
        "or",
        "our",
        "so",
        "that",
        "the",
        "their",
        "this",
        "to",
        "was",
        "we",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "you",
        "your",
    ]
)


@dataclass(frozen=True, slots=True)
class Recalled:
    fact: Fact
    score: float
    why: dict[str, Any]
    stale: bool = False
    conflicts: tuple[Fact, ...] = ()

    def shown(self) -> dict[str, Any]:
        return {
            **self.fact.shown(),
            "score": round(self.score, 6),
            "why": self.why,
            "stale": self.stale,
            "conflicts": [
                {"id": c.id, "value": c.value, "source": c.source, "observed_at": c.observed_at}
                for c in self.conflicts
            ],
        }


def words(query: str) -> list[str]:
    found = [w.lower() for w in _WORD.findall(query)]
    kept = [w for w in found if w not in _STOP]
    return list(dict.fromkeys(kept or found))


def _scoped(
    scopes: list[tuple[str, str]] | None, *, unindexed: bool = False
) -> tuple[str, list[Any]]:
    """The SQL of `scopes` (None: every scope of the tenant, for operators); `unindexed`
    keeps it off SQLite's indexes (`+column`), for rows already chosen by key."""
    if not scopes:
        return "1 = 1", []
    plus = "+" if unindexed else ""
    clause = " OR ".join(f"({plus}m.scope = ? AND {plus}m.scope_id = ?)" for _ in scopes)
    return f"({clause})", [v for pair in scopes for v in pair]


@dataclass
class _Matrix:
    """One tenant's embeddings in memory, appended to in place (capacity doubles, so a new
    fact costs its own row, not a copy of the matrix) and refreshed with rows past `last`."""

    nums: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    buffer: np.ndarray | None = None
    size: int = 0
    last: int = 0

    @property
    def vectors(self) -> np.ndarray | None:
        return None if self.buffer is None else self.buffer[: self.size]

    def add(self, nums: np.ndarray, new: np.ndarray) -> None:
        need = self.size + len(nums)
        if self.buffer is None or need > len(self.buffer) or new.shape[1] != self.buffer.shape[1]:
            grown = np.empty((max(need, 2 * self.size, 64), new.shape[1]), dtype=np.float32)
            if self.buffer is not None and new.shape[1] == self.buffer.shape[1]:
                grown[: self.size] = self.buffer[: self.size]
            else:
                self.size, self.nums = 0, self.nums[:0]
                need = len(nums)
            self.buffer = grown
        self.buffer[self.size : need] = new
        self.nums = np.concatenate([self.nums, nums])
        self.size = need

    def drop(self, num: int) -> None:
        keep = np.flatnonzero(self.nums != num)
        if len(keep) == self.size or self.buffer is None:
            return
        self.buffer[: len(keep)] = self.buffer[keep]
        self.nums, self.size = self.nums[keep], len(keep)


class Recall:
    """Recall over one store's facts (see the module docstring)."""

    def __init__(self, facts: Facts):
        self.facts = facts
        self.db = facts.db
        self._matrices: dict[str, _Matrix] = {}

    async def search(
        self,
        *,
        tenant: str,
        scopes: list[tuple[str, str]] | None,
        query: str,
        limit: int = 5,
        mode: Mode = "hybrid",
        sources: dict[str, str] | None = None,
        max_age: float | None = None,
        now: float | None = None,
    ) -> list[Recalled]:
        now = time.time() if now is None else now
        pool = max(limit * 4, 20)
        lexical: list[tuple[int, float]] = []
        vector: list[tuple[int, float]] = []
        if mode in ("lexical", "hybrid"):
            lexical = await self._lexical(tenant, scopes, query, pool)
        if mode in ("vector", "hybrid") and self.facts.embedder is not None:
            vector = await self._vector(tenant, query, pool * 4)
        fused: dict[int, dict[str, Any]] = {}
        for name, ranked in (("lexical", lexical), ("vector", vector)):
            for rank, (num, raw) in enumerate(ranked, start=1):
                entry = fused.setdefault(num, {"rrf": 0.0})
                entry[name] = {"rank": rank, "score": round(float(raw), 6)}
                entry["rrf"] += 1.0 / (RRF_K + rank)
        if not fused:
            return []
        found = await self._current(tenant, scopes, list(fused))
        ordered = sorted(found, key=lambda f: -fused[f.num]["rrf"])
        rivals = await self._rivals(tenant, scopes, _keys(ordered, limit))
        out: list[Recalled] = []
        seen: set[tuple[str, str]] = set()
        for fact in ordered:
            key = (fact.subject, fact.attribute)
            if fact.attribute and key in seen:
                continue  # one answer per key: the winner, its rivals as conflicts
            why = dict(fused[fact.num])
            winner, conflicts, reason = fact, (), ""
            if fact.attribute:
                seen.add(key)
                winner, conflicts, reason = _settle(fact, rivals.get(key, []), sources or {})
                if reason:
                    why["value"] = reason
            stale = winner.stale(now, max_age)
            if stale:
                why["stale"] = (
                    "past valid_until"
                    if winner.valid_until and winner.valid_until < now
                    else f"older than max_age {max_age:g}s"
                )
            out.append(Recalled(winner, why["rrf"], why, stale, conflicts))
            if len(out) == limit:
                break
        return out

    async def _lexical(
        self, tenant: str, scopes: list[tuple[str, str]] | None, query: str, pool: int
    ) -> list[tuple[int, float]]:
        """Conjunctive first, disjunctive only to fill the pool: ranking every fact that has
        any one common word (a third of them at 100k, `bench/memory.py`) costs ~140 ms,
        ranking those that have all the words a few. A fact with every word outranks one
        with some of them in nearly every case (BM25 sums per-word weights), so the AND
        pass finds the head of the OR ranking; the OR pass runs only when it is short."""
        terms = words(query)
        if not terms:
            return []
        found = await self._match(tenant, scopes, terms, pool, every=len(terms) > 1)
        if len(found) < pool and len(terms) > 1:
            have = {num for num, _ in found}
            more = await self._match(tenant, scopes, terms, pool, every=False)
            found += [(num, score) for num, score in more if num not in have][: pool - len(found)]
        return found

    async def _match(
        self,
        tenant: str,
        scopes: list[tuple[str, str]] | None,
        terms: list[str],
        pool: int,
        *,
        every: bool,
    ) -> list[tuple[int, float]]:
        clause, params = _scoped(scopes)
        if self.db.dialect == "sqlite":
            match = (" AND " if every else " OR ").join(f'"{t}"' for t in terms)
            rows = await self.db.rows(
                "SELECT m.num, bm25(memories_fts) FROM memories_fts"
                " JOIN memories m ON m.num = memories_fts.rowid"
                f" WHERE memories_fts MATCH ? AND m.tenant = ? AND {clause}"
                " AND m.superseded_by IS NULL ORDER BY bm25(memories_fts) LIMIT ?",
                (match, tenant, *params, pool),
                what="search facts",
            )
            return [(num, -score) for num, score in rows]  # bm25: lower is better
        tsquery = (" & " if every else " | ").join(terms)
        rows = await self.db.rows(
            "SELECT m.num, ts_rank(m.tsv, q) AS rank FROM memories m,"
            " to_tsquery('english', ?) q"
            f" WHERE m.tsv @@ q AND m.tenant = ? AND {clause} AND m.superseded_by IS NULL"
            " ORDER BY rank DESC LIMIT ?",
            (tsquery, tenant, *params, pool),
            what="search facts",
        )
        return [(num, score) for num, score in rows]

    async def _vector(self, tenant: str, query: str, pool: int) -> list[tuple[int, float]]:
        matrix = await self._refresh(tenant)
        if matrix.vectors is None or not len(matrix.nums):
            return []
        embedder = self.facts.embedder
        q = (await embedder.embed([query]))[0]
        scores = matrix.vectors @ q
        top = min(pool, len(scores))
        best = np.argpartition(-scores, top - 1)[:top]
        best = best[np.argsort(-scores[best])]
        return [(int(matrix.nums[i]), float(scores[i])) for i in best]

    async def _refresh(self, tenant: str) -> _Matrix:
        """New embeddings of `tenant` since the last look, in one short read. `last` moves to
        the table's newest row (not the tenant's), so the range `num > last` stays small and
        both planners take it by primary key (PostgreSQL read every row of the tenant's
        index before: 24 ms a recall at 10k). SQLite's `+tenant` keeps it off that index."""
        matrix = self._matrices.setdefault(tenant, _Matrix())
        plus = "+" if self.db.dialect == "sqlite" and matrix.last else ""
        statements = [
            ("SELECT max(num) FROM memory_vectors", ()),
            (
                "SELECT num, vector FROM memory_vectors WHERE num > ?"
                f" AND {plus}tenant = ? AND model = ? ORDER BY num",
                (matrix.last, tenant, self.facts.embedder.name),
            ),
        ]
        if self.db.dialect == "sqlite":  # two reads, no write lock (nothing awaits between)
            newest, rows = [
                await self.db.rows(*st, what="read fact embeddings") for st in statements
            ]
        else:  # one session, one round trip each
            newest, rows = await self.db.run(statements, what="read fact embeddings")
        if rows:
            nums = np.array([r[0] for r in rows], dtype=np.int64)
            matrix.add(nums, np.stack([np.frombuffer(bytes(r[1]), dtype=np.float32) for r in rows]))
        top = newest[0][0] if newest and newest[0][0] is not None else 0
        matrix.last = max(matrix.last, int(top), int(rows[-1][0]) if rows else 0)
        return matrix

    def forgotten(self, tenant: str, num: int) -> None:
        """Drop a forgotten fact's embedding from this process's matrix too."""
        matrix = self._matrices.get(tenant)
        if matrix is not None:
            matrix.drop(num)

    async def _current(
        self, tenant: str, scopes: list[tuple[str, str]] | None, nums: list[int]
    ) -> list[Fact]:
        # SQLite's `+` keeps the planner on the primary key: with plain `m.tenant = ?` it
        # walks the tenant's whole (tenant, scope, ...) index instead (25 ms at 100k, not 0.4).
        sqlite = self.db.dialect == "sqlite"
        clause, params = _scoped(scopes, unindexed=sqlite)
        marks = ", ".join("?" for _ in nums)
        rows = await self.db.rows(
            f"SELECT {_m(COLUMNS)} FROM memories m WHERE m.num IN ({marks})"
            f" AND {'+' if sqlite else ''}m.tenant = ?"
            f" AND {clause} AND m.superseded_by IS NULL",
            (*nums, tenant, *params),
            what="read recalled facts",
        )
        return [fact_of(r) for r in rows]

    async def _rivals(
        self, tenant: str, scopes: list[tuple[str, str]] | None, keys: list[tuple[str, str]]
    ) -> dict[tuple[str, str], list[Fact]]:
        """The current values of every key in `keys`, in one read (one round trip on
        PostgreSQL, where a read per key was most of a recall's time)."""
        if not keys:
            return {}
        # One SELECT per key, UNION ALL-ed: each uses the key index (an OR of the keys made
        # PostgreSQL scan the table), all in one statement, one round trip.
        clause, params = _scoped(scopes)
        one = (
            f"SELECT {_m(COLUMNS)} FROM memories m WHERE m.tenant = ? AND m.subject = ?"
            f" AND m.attribute = ? AND {clause} AND m.superseded_by IS NULL"
        )
        rows = await self.db.rows(
            " UNION ALL ".join(one for _ in keys),
            tuple(v for key in keys for v in (tenant, *key, *params)),
            what="read the keys' values",
        )
        out: dict[tuple[str, str], list[Fact]] = {}
        for row in rows:
            fact = fact_of(row)
            out.setdefault((fact.subject, fact.attribute), []).append(fact)
        return out


def _keys(ordered: list[Fact], limit: int) -> list[tuple[str, str]]:
    """The keys the first `limit` results will settle (a note is a result with no key)."""
    keys: list[tuple[str, str]] = []
    results = 0
    for fact in ordered:
        if results == limit:
            break
        key = (fact.subject, fact.attribute)
        if not fact.attribute:
            results += 1
        elif key not in keys:
            keys.append(key)
            results += 1
    return keys


def _settle(
    fact: Fact, values: list[Fact], sources: dict[str, str]
) -> tuple[Fact, tuple[Fact, ...], str]:
    """The winning value of `fact`'s key among its current `values`, the values it beat,
    and why it won."""
    rivals = sorted(values, key=lambda f: (-f.observed_at, -f.num))
    declared = sources.get(fact.kind)
    from_declared = [f for f in rivals if f.source == declared]
    if from_declared:
        winner, reason = (
            from_declared[0],
            f"from {declared}, the declared source of {fact.kind}",
        )
    else:
        winner = rivals[0] if rivals else fact
        reason = "the newest observation" + (
            f" (no value from {declared}, the declared source)" if declared else ""
        )
    conflicts = tuple(f for f in rivals if f.value != winner.value)
    return winner, conflicts, reason if (conflicts or declared) else ""


def _m(columns: str) -> str:
    return ", ".join(f"m.{c.strip()}" for c in columns.split(","))
