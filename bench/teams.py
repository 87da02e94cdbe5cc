"""What teams cost: a sub-agent call against a plain tool call, and a fan-out of 1,000
children under one parent, on SQLite.

    .venv/bin/python bench/teams.py [--runs 200] [--children 1000] [--json]

- **Sub-agent call overhead**: `Runtime.run` of a parent whose scripted model makes one
  call and then answers, timed end to end (created, driven, every step committed), `--runs`
  times after a warm-up, for two parents: one calling a plain `@tool`, one calling a child
  agent (which answers at once). The overhead is the difference of the medians, in µs: the
  child's creation (budget reserved in the same statement), its run (one model step), its
  end settling the parent's wait, and the parent's wake and collection.
- **Fan-out**: one parent whose first turn calls `--children` child agents (each answers in
  one step), joined, driven by `Runtime.run` in a fresh process (so peak RSS is the
  fan-out's alone): wall time, steps per second over the whole tree, peak RSS.

The model is the instant `scripted` provider, so this measures the runtime, not a model.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

from bosun import Agent, Limits, Runtime, tool


@tool(effect="read", idempotent=True)
def lookup(order: str) -> dict:
    """Look an order up."""
    return {"order": order}


def scripted(*turns: dict) -> dict:
    return {"provider": "scripted", "turns": list(turns)}


def one_call(name: str) -> dict:
    return {"tool_calls": [{"name": name, "arguments": {"input": "1234"}}]}


def plain_parent() -> Agent:
    call = {"tool_calls": [{"name": "lookup", "arguments": {"order": "1234"}}]}
    return Agent(name="plain", model=scripted(call, {"content": "done"}), tools=[lookup])


def agent_parent() -> Agent:
    child = Agent(name="helper", model=scripted({"content": "1234 is fine"}))
    return Agent(
        name="lead",
        model=scripted(one_call("helper"), {"content": "done"}),
        tools=[child],
    )


async def time_runs(db: str, agent: Agent, runs: int) -> list[float]:
    samples = []
    async with Runtime(db) as rt:
        await rt.run(agent, "warm up")
        for _ in range(runs):
            started = time.perf_counter_ns()
            result = await rt.run(agent, "go")
            samples.append((time.perf_counter_ns() - started) / 1000)
            assert result.status == "succeeded", result
    return samples


async def overhead(runs: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        plain = await time_runs(os.path.join(folder, "plain.db"), plain_parent(), runs)
        agent = await time_runs(os.path.join(folder, "agent.db"), agent_parent(), runs)
    p, a = statistics.median(plain), statistics.median(agent)
    return {
        "runs": runs,
        "plain_tool_run_us": round(p, 1),
        "agent_tool_run_us": round(a, 1),
        "sub_agent_overhead_us": round(a - p, 1),
    }


async def fan_out(children: int) -> dict:
    kids = Agent(name="kid", model=scripted({"content": "ok"}), limits=Limits(max_steps=2))
    turn = {
        "tool_calls": [
            {"name": "kid", "arguments": {"input": f"task {i}"}} for i in range(children)
        ]
    }
    parent = Agent(
        name="lead",
        model=scripted(turn, {"content": "joined"}),
        tools=[kids],
        limits=Limits(
            max_steps=children * 2 + 10, max_tool_calls=children + 10, max_wall_seconds=3600
        ),
    )
    with tempfile.TemporaryDirectory() as folder:
        async with Runtime(os.path.join(folder, "fanout.db")) as rt:
            started = time.perf_counter()
            result = await rt.run(parent, "fan out")
            wall = time.perf_counter() - started
            tree = await rt.store.list_runs(root_id=result.run_id, limit=children + 10)
    assert result.status == "succeeded", result
    assert len(tree) == children + 1 and all(r.status == "succeeded" for r in tree)
    steps = sum(r.steps for r in tree)
    return {
        "children": children,
        "wall_s": round(wall, 3),
        "tree_steps": steps,
        "steps_per_s": round(steps / wall, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--children", type=int, default=1000)
    parser.add_argument("--only", choices=["overhead", "fanout", "plain", "agent"])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.only == "fanout":
        print(json.dumps(asyncio.run(fan_out(args.children))))
        return
    if args.only in ("plain", "agent"):  # one kind, for instruction counts (see README)
        agent = plain_parent() if args.only == "plain" else agent_parent()
        with tempfile.TemporaryDirectory() as folder:
            asyncio.run(time_runs(os.path.join(folder, "one.db"), agent, args.runs))
        return
    results = {"overhead": asyncio.run(overhead(args.runs))}
    if args.only is None:  # the fan-out in its own process: its peak RSS is its own
        done = subprocess.run(
            [sys.executable, __file__, "--only", "fanout", "--children", str(args.children)],
            capture_output=True,
            text=True,
            check=True,
        )
        results["fanout"] = json.loads(done.stdout.strip().splitlines()[-1])
    if args.json:
        print(json.dumps(results, indent=2))
        return
    o = results["overhead"]
    print(f"sub-agent call vs plain tool call (median of {o['runs']} runs, SQLite)")
    print(f"  run with a plain tool call   {o['plain_tool_run_us']:>10.1f} µs")
    print(f"  run with a sub-agent call    {o['agent_tool_run_us']:>10.1f} µs")
    print(f"  overhead of the sub-agent    {o['sub_agent_overhead_us']:>10.1f} µs")
    if "fanout" in results:
        f = results["fanout"]
        print(f"fan-out of {f['children']} children under one parent (SQLite)")
        print(f"  wall time {f['wall_s']} s, {f['tree_steps']} steps, {f['steps_per_s']} steps/s")
        print(f"  peak RSS {f['peak_rss_mb']} MB")


if __name__ == "__main__":
    main()
