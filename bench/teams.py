"""What teams cost: a sub-agent call against a plain tool call, and a fan-out of 1,000
children under one parent, on SQLite.

    .venv/bin/python bench/teams.py [--runs 200] [--children 1000] [--json]

- **Sub-agent call overhead**: `Runtime.run` of a parent whose scripted model makes one
  call and then answers, timed end to end (created, driven, every step committed), `--runs`
  times after a warm-up, for two parents: one calling a plain `@tool`, one calling a child
  agent (which answers at once). The overhead is the difference of the medians, in µs: the
  child's creation (budget reserved in the same statement), its run (one model step), its
  end settling the parent's wait, and the parent's wake and collection. The same in CPU
  time (the medians of the process's CPU per run, and their ratio), which a loaded machine
  disturbs far less: a run longer than a scheduler slice is preempted there, a short one
  mostly not, so wall ratios grow with the load.
- **Fan-out**: one parent whose first turn calls `--children` child agents (each answers in
  one step), joined, driven by `Runtime.run` in a fresh process (so peak RSS is the
  fan-out's alone): wall and CPU time, steps per second over the whole tree, peak RSS, the
  tree's journal bytes (events as stored, JSON) and how often the parent parked.
- **Join one by one** (`--only join`, `--children` children, default 300): every child
  waits for its own signal; the bench signals them one at a time and drives the tree after
  each, so the parent is woken once per child, the worst case for a join (each wake
  replays, collects one result, parks again): CPU per wake, the parent's journal bytes.

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

from bosun import Agent, Limits, Runtime, Wait, tool
from bosun.journal.codec import encode_event


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


async def time_runs(db: str, agent: Agent, runs: int) -> tuple[list[float], list[float]]:
    """Wall and CPU µs of each run (CPU: this process's, steadier on a loaded machine)."""
    walls, cpus = [], []
    async with Runtime(db) as rt:
        await rt.run(agent, "warm up")
        for _ in range(runs):
            started, cpu = time.perf_counter_ns(), time.process_time_ns()
            result = await rt.run(agent, "go")
            walls.append((time.perf_counter_ns() - started) / 1000)
            cpus.append((time.process_time_ns() - cpu) / 1000)
            assert result.status == "succeeded", result
    return walls, cpus


async def overhead(runs: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        plain = await time_runs(os.path.join(folder, "plain.db"), plain_parent(), runs)
        agent = await time_runs(os.path.join(folder, "agent.db"), agent_parent(), runs)
    (p, pc), (a, ac) = [(statistics.median(w), statistics.median(c)) for w, c in (plain, agent)]
    return {
        "runs": runs,
        "plain_tool_run_us": round(p, 1),
        "agent_tool_run_us": round(a, 1),
        "sub_agent_overhead_us": round(a - p, 1),
        "plain_tool_run_cpu_us": round(pc, 1),
        "agent_tool_run_cpu_us": round(ac, 1),
        "agent_vs_plain_cpu": round(ac / pc, 2),
    }


@tool(effect="read", idempotent=True)
def await_go() -> Wait:
    """Wait for the `go` signal."""
    return Wait(signal="go")


def journal_bytes(events: list) -> int:
    return sum(len(encode_event(e)) for _, e in events)


async def tree_bytes(rt: Runtime, tree: list) -> int:
    return sum([journal_bytes(await rt.store.events(r.id)) for r in tree])


async def join_one_by_one(children: int) -> dict:
    waiter = Agent(
        name="waiter",
        model=scripted({"tool_calls": [{"name": "await_go", "arguments": {}}]}, {"content": "ok"}),
        tools=[await_go],
        limits=Limits(max_steps=3),
    )
    turn = {
        "tool_calls": [
            {"name": "waiter", "arguments": {"input": f"task {i}"}} for i in range(children)
        ]
    }
    parent = Agent(
        name="lead",
        model=scripted(turn, {"content": "joined"}),
        tools=[waiter],
        limits=Limits(max_steps=children * 2 + 10, max_tool_calls=children + 10),
    )
    with tempfile.TemporaryDirectory() as folder:
        async with Runtime(os.path.join(folder, "join.db")) as rt:
            first = await rt.run(parent, "fan out")
            kids = await rt.store.list_runs(parent_id=first.run_id, limit=children + 10)
            started, cpu = time.perf_counter(), time.process_time()
            for kid in sorted(kids, key=lambda k: k.created_at):
                await rt.signal(kid.id, "go", {})
                result = await rt._drive_tree(first.run_id)
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu
            events = await rt.store.events(first.run_id)
    assert result.status == "succeeded", result
    return {
        "children": children,
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "cpu_ms_per_wake": round(cpu / children * 1000, 2),
        "parent_parks": sum(1 for _, e in events if e.kind == "run_waiting"),
        "parent_journal_bytes": journal_bytes(events),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
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
            started, cpu = time.perf_counter(), time.process_time()
            result = await rt.run(parent, "fan out")
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu
            tree = await rt.store.list_runs(root_id=result.run_id, limit=children + 10)
            stored = await tree_bytes(rt, tree)
            parks = sum(
                1 for _, e in await rt.store.events(result.run_id) if e.kind == "run_waiting"
            )
    assert result.status == "succeeded", result
    assert len(tree) == children + 1 and all(r.status == "succeeded" for r in tree)
    steps = sum(r.steps for r in tree)
    return {
        "children": children,
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "tree_steps": steps,
        "steps_per_s": round(steps / wall, 1),
        "tree_journal_bytes": stored,
        "parent_parks": parks,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--children", type=int, default=1000)
    parser.add_argument("--only", choices=["overhead", "fanout", "join", "plain", "agent"])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.only == "fanout":
        print(json.dumps(asyncio.run(fan_out(args.children))))
        return
    if args.only == "join":
        print(json.dumps(asyncio.run(join_one_by_one(args.children))))
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
    print(
        f"  CPU: plain {o['plain_tool_run_cpu_us']} µs, sub-agent {o['agent_tool_run_cpu_us']} µs"
    )
    print(f"  ({o['agent_vs_plain_cpu']}x)")
    if "fanout" in results:
        f = results["fanout"]
        print(f"fan-out of {f['children']} children under one parent (SQLite)")
        print(f"  wall time {f['wall_s']} s (CPU {f['cpu_s']} s), {f['tree_steps']} steps,")
        print(f"  {f['steps_per_s']} steps/s, peak RSS {f['peak_rss_mb']} MB,")
        print(f"  journal {f['tree_journal_bytes']} B, the parent parked {f['parent_parks']}x")


if __name__ == "__main__":
    main()
