"""Exact vector search: sqlite-vec's `vec0` KNN against the numpy matrix recall keeps.

    python bench/memory_vec.py --sizes 10000,100000

Why this exists: the question "should SQLite recall use sqlite-vec?" needs a number. The
system Python's sqlite3 here cannot load extensions (`enable_load_extension` is missing),
so sqlite-vec runs through `apsw` on a separate connection (the store's connection could
not hold the table: forgetting a fact would then span two connections, two transactions).
sqlite-vec 0.1.x's `vec0` is itself an exact scan (no ANN index yet), so the comparison is
scan against scan: 384-dim float32, cosine, k = 80 (recall's vector pool), 20 queries.
Prints medians in ms and the ratio vec0 / numpy. Skips when apsw or sqlite-vec is absent.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np


def _numpy(matrix: np.ndarray, queries: np.ndarray, k: int) -> list[float]:
    times = []
    for q in queries:
        t = time.perf_counter()
        scores = matrix @ q
        best = np.argpartition(-scores, k - 1)[:k]
        best[np.argsort(-scores[best])]
        times.append((time.perf_counter() - t) * 1000)
    return times


def _vec0(matrix: np.ndarray, queries: np.ndarray, k: int) -> tuple[list[float], float]:
    import apsw
    import sqlite_vec

    conn = apsw.Connection(":memory:")
    conn.enable_load_extension(True)
    conn.load_extension(sqlite_vec.loadable_path())
    conn.enable_load_extension(False)
    dim = matrix.shape[1]
    conn.execute(
        f"CREATE VIRTUAL TABLE v USING vec0(embedding float[{dim}] distance_metric=cosine)"
    )
    started = time.perf_counter()
    with conn:
        conn.executemany(
            "INSERT INTO v(rowid, embedding) VALUES (?, ?)",
            ((i + 1, row.tobytes()) for i, row in enumerate(matrix)),
        )
    load = time.perf_counter() - started
    times = []
    for q in queries:
        t = time.perf_counter()
        conn.execute(
            "SELECT rowid, distance FROM v WHERE embedding MATCH ? AND k = ?", (q.tobytes(), k)
        ).fetchall()
        times.append((time.perf_counter() - t) * 1000)
    return times, load


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--dim", type=int, default=384)
    args = parser.parse_args()
    try:
        import apsw  # noqa: F401
        import sqlite_vec  # noqa: F401
    except ImportError as exc:
        print(f"skipped: {exc} (pip install apsw sqlite-vec)", file=sys.stderr)
        return
    rng = np.random.default_rng(17)
    for size in (int(s) for s in args.sizes.split(",") if s):
        matrix = rng.standard_normal((size, args.dim)).astype(np.float32)
        matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
        queries = matrix[rng.integers(0, size, 20)]
        ours = statistics.median(_numpy(matrix, queries, 80))
        theirs_times, load = _vec0(matrix, queries, 80)
        theirs = statistics.median(theirs_times)
        print(
            f"{size:>9,} vectors: numpy {ours:7.2f} ms, sqlite-vec vec0 {theirs:7.2f} ms"
            f" (x{theirs / ours:.1f}), vec0 load {load:.1f} s"
        )


if __name__ == "__main__":
    main()
