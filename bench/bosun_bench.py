"""Bosun on the shared workload: N model calls, N - 1 of them asking for a trivial tool.

The model is the `sim` provider with zero latency: it answers instantly, like the peers' scripted
model function, and its spec has the same size whatever N is (a `scripted` spec would store all
N declared turns in the agent's version row, which the storage measure would count per step).
`BOSUN_BENCH_PROVIDER=scripted` runs the same workload with a declared script instead.

    python bench/bosun_bench.py --dir /tmp/b --runs 5 --steps 50 --profile matched
    python bench/bosun_bench.py --dir /tmp/b --runs 1 --only time   # as bench/run.py, per round
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from common import (
    Clock,
    apply_pragmas,
    db_bytes,
    emit,
    fresh,
    measures,
    read_settings,
    storage_lengths,
    summarize,
    worker_args,
)

from bosun import Agent, Limits, Runtime, tool

UNLIMITED = Limits(
    max_steps=None, max_tool_calls=None, max_repeats=None, max_wall_seconds=None, max_tokens=None
)


@tool(effect="read", idempotent=True)
async def add(n: int) -> int:
    """Add one."""
    return n + 1


def make_agent(steps: int, provider: str) -> Agent:
    if provider == "sim":
        model: dict[str, Any] = {"provider": "sim", "latency_ms": 0, "tool_steps": steps - 1}
    else:
        turns: list[dict[str, Any]] = [
            {"tool_calls": [{"name": "add", "arguments": {"n": i}}]} for i in range(steps - 1)
        ]
        model = {"provider": "scripted", "turns": [*turns, {"content": "done"}]}
    return Agent(name="bench", model=model, tools=[add], limits=UNLIMITED)


async def open_runtime(path: str, profile: str) -> Runtime:
    rt = Runtime(path)
    await rt.open()
    if profile != "shipped":
        apply_pragmas(rt.store.conn, profile)  # type: ignore[attr-defined]
    return rt


async def one_run(rt: Runtime, agent: Agent, steps: int) -> Clock:
    with Clock(steps) as clock:
        result = await rt.run(agent, "go")
    if result.status != "succeeded" or result.steps != steps:
        raise SystemExit(f"bosun run ended {result.status} after {result.steps} steps: {result}")
    return clock


async def main() -> None:
    args = worker_args("Bosun per-step overhead and storage")
    provider = os.environ.get("BOSUN_BENCH_PROVIDER", "sim")
    steps = args.steps
    result: dict[str, Any] = {
        "framework": "bosun" if provider == "sim" else f"bosun ({provider} model)",
        "profile": args.profile,
        "steps": steps,
    }

    if measures(args, "time"):  # Time per step.
        path = fresh(os.path.join(args.dir, "bosun_time.db"))
        rt = await open_runtime(path, args.profile)
        result["settings"] = read_settings(rt.store.conn)  # type: ignore[attr-defined]
        agent = make_agent(steps, provider)
        await one_run(rt, agent, steps)  # warm-up
        clocks = [await one_run(rt, agent, steps) for _ in range(args.runs)]
        await rt.close()
        result["runs"] = args.runs
        result.update(summarize([c.wall for c in clocks], [c.cpu for c in clocks]))

    if measures(args, "storage"):  # Bytes per step.
        storage: dict[str, float] = {}
        for n in storage_lengths(args):
            path = fresh(os.path.join(args.dir, f"bosun_storage_{n}.db"))
            rt = await open_runtime(path, args.profile)
            result.setdefault("settings", read_settings(rt.store.conn))  # type: ignore[attr-defined]
            before = db_bytes(path)
            await one_run(rt, make_agent(n, provider), n)
            after = db_bytes(path)
            await rt.close()
            storage[str(n)] = (after - before) / n
        result["bytes_per_step"] = storage

    emit(result)


if __name__ == "__main__":
    asyncio.run(main())
