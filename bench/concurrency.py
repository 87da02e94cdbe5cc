"""Bosun throughput: 1,000 concurrent runs in one process on one SQLite file.

Each run uses the `sim` provider (50 ms per model call, `--tool-steps` tool calls, then an
answer). All runs are started at once with `asyncio.gather`; a step is one model call (a
`model_responded` event in the journal). Reports steps per second over the wall time of the
whole batch, and the process's peak resident memory (`resource.getrusage(...).ru_maxrss`,
which includes the interpreter and imports; the RSS before the batch is reported beside it).

    python bench/concurrency.py --dir /tmp/b --runs 1000 --tool-steps 10
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import time

from common import PROFILES, apply_pragmas, emit, fresh

from bosun import Agent, Limits, Runtime, tool


@tool(effect="read", idempotent=True)
async def add(n: int) -> int:
    """Add one."""
    return n + 1


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--tool-steps", type=int, default=10)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="matched")
    args = parser.parse_args()

    agent = Agent(
        name="bench-sim",
        model={"provider": "sim", "latency_ms": args.latency_ms, "tool_steps": args.tool_steps},
        tools=[add],
        limits=Limits(max_steps=None, max_tool_calls=None, max_repeats=None),
    )
    path = fresh(os.path.join(args.dir, "concurrency.db"))
    async with Runtime(path) as rt:
        if args.profile != "shipped":
            apply_pragmas(rt.store.conn, args.profile)  # type: ignore[attr-defined]
        rss_before = rss_mib()
        commits_before = rt.store.commits  # type: ignore[attr-defined]
        started = time.perf_counter()
        results = await asyncio.gather(*(rt.run(agent, "go") for _ in range(args.runs)))
        wall = time.perf_counter() - started
        commits = rt.store.commits - commits_before  # type: ignore[attr-defined]
        steps = rt.store.conn.execute(  # type: ignore[attr-defined]
            "SELECT count(*) FROM events WHERE kind='model_responded'"
        ).fetchone()[0]
    bad = [r for r in results if r.status != "succeeded"]
    if bad:
        raise SystemExit(f"{len(bad)} runs did not succeed, e.g. {bad[0]}")
    emit(
        {
            "framework": "bosun",
            "test": "concurrency",
            "profile": args.profile,
            "runs": args.runs,
            "model_latency_ms": args.latency_ms,
            "steps": steps,
            "wall_seconds": wall,
            "steps_per_second": steps / wall,
            "ideal_steps_per_second": args.runs * 1000 / args.latency_ms
            if args.latency_ms
            else None,
            "group_commits": commits,
            "peak_rss_mib": rss_mib(),
            "rss_before_mib": rss_before,
        }
    )


if __name__ == "__main__":
    asyncio.run(main())
