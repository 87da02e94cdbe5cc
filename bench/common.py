"""Shared by every benchmark worker: the workload's shape, settings profiles, storage measure.

Each framework runs in its own subprocess (`bench/run.py` starts them) and prints one JSON
object on its last stdout line. Everything here is measured the same way for every framework:

- time per step: wall time of one whole run (created, driven to the end, every step committed)
  divided by its number of steps; one warm-up run first, then the median over `--runs` runs.
  (`bench/run.py` starts a worker once per round with `--only time`, and takes the median over
  all rounds itself.)
- bytes per step: a fresh database file per run length; after the framework has created its
  schema, and again after one run of N steps, the file is checkpointed
  (`PRAGMA wal_checkpoint(TRUNCATE)`) and the sizes of the database and its -wal file are
  summed; the growth is divided by N.

A "step" is one model call plus the tool call it asks for: a run of N steps makes N model calls,
the first N - 1 ask for the trivial tool, the last answers with text.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sqlite3
import statistics
import sys
import time
from typing import Any

# SQLite settings applied to every framework's connections, by profile.
#   matched: WAL + synchronous=NORMAL for everyone: a commit survives the process being killed
#            at any point (the OS holds the written pages), not a power loss. Bosun's default.
#   full:    WAL + synchronous=FULL for everyone: an fsync per commit, survives power loss.
#   shipped: each framework exactly as it ships (Bosun: WAL+NORMAL; LangGraph's SqliteSaver:
#            WAL + SQLite's default synchronous=FULL; DBOS: rollback journal + FULL).
PROFILES: dict[str, dict[str, str] | None] = {
    "matched": {"journal_mode": "WAL", "synchronous": "NORMAL"},
    "full": {"journal_mode": "WAL", "synchronous": "FULL"},
    "shipped": None,
}


def apply_pragmas(conn: Any, profile: str) -> None:
    """Set the profile's pragmas on a DB-API sqlite3 connection (no-op for `shipped`)."""
    pragmas = PROFILES[profile]
    if pragmas is None:
        return
    conn.execute(f"PRAGMA journal_mode={pragmas['journal_mode']}")
    conn.execute(f"PRAGMA synchronous={pragmas['synchronous']}")


def read_settings(conn: Any) -> dict[str, Any]:
    journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
    sync = conn.execute("PRAGMA synchronous").fetchone()[0]
    return {"journal_mode": journal, "synchronous": {0: "OFF", 1: "NORMAL", 2: "FULL"}.get(sync)}


def db_bytes(path: str) -> int:
    """Size of the database after folding the WAL back in (database + -wal file)."""
    conn = sqlite3.connect(path, timeout=30)
    try:
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        if mode.lower() == "wal":
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        conn.close()
    total = 0
    for suffix in ("", "-wal"):
        with contextlib.suppress(FileNotFoundError):
            total += os.path.getsize(path + suffix)
    return total


def fresh(path: str) -> str:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(path + suffix)
    return path


def worker_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--dir", required=True, help="folder for the database files")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--storage-steps", default="50,500")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="matched")
    parser.add_argument(
        "--only",
        choices=("time", "storage"),
        default=None,
        help="measure only time per step or only bytes per step (default: both)",
    )
    return parser.parse_args()


def measures(args: argparse.Namespace, what: str) -> bool:
    """Whether this invocation measures `what` ("time" or "storage"), per `--only`."""
    return args.only in (None, what)


def storage_lengths(args: argparse.Namespace) -> list[int]:
    return [int(n) for n in args.storage_steps.split(",") if n]


class Clock:
    """Wall and CPU time of one timed run, in microseconds per step."""

    def __init__(self, steps: int):
        self.steps = steps

    def __enter__(self) -> Clock:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = (time.perf_counter() - self.wall) / self.steps * 1e6
        self.cpu = (time.process_time() - self.cpu) / self.steps * 1e6


def summarize(samples_us: list[float], cpu_us: list[float]) -> dict[str, Any]:
    """Wall time per step (the measure) and process CPU time per step (less disturbed by other
    processes on a shared machine; counts every thread of the framework)."""
    return {
        "us_per_step_median": statistics.median(samples_us),
        "us_per_step_min": min(samples_us),
        "us_per_step_max": max(samples_us),
        "us_per_step_samples": samples_us,
        "cpu_us_per_step_median": statistics.median(cpu_us),
        "cpu_us_per_step_samples": cpu_us,
    }


def emit(result: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
