"""Per-step overhead of a workflow step against an agent's tool step (both Bosun).

    .venv/bin/python bench/workflow_overhead.py [--steps 50] [--runs 5] [--rounds 3] [--json]

The same work two ways, in one process, on a fresh SQLite file each (WAL + NORMAL):

- **agent**: a scripted agent whose model asks for `add(n)` once per turn, `--steps` turns,
  then answers: each step journals the model answer, the policy decision, the tool start
  and its result (what `bench/run.py` measures against LangGraph and DBOS);
- **workflow**: a DSL workflow `for` loop calling the registered function `add` `--steps`
  times: each step is the interpreter's turn (it replays the document from the start over
  the results so far, then proposes the next call) plus the same governed tool call.

The comparison with a peer engine is `bench/run.py`'s (Bosun's agent step vs LangGraph and
DBOS); this measures what a workflow step adds to it. A round runs each way `--runs` times
in an order rotated by one per round; per-step wall time is the median over all runs, CPU
time per step the process's. "x agent" is the workflow's median over the agent's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

from bosun import Agent, Runtime, tool
from bosun.workflow import build
from bosun.workflow.expr import clear_cache


@tool(effect="read", idempotent=True)
def add(n: int) -> int:
    """n + 1."""
    return n + 1


def agent(steps: int) -> Agent:
    turns = [{"tool_calls": [{"name": "add", "arguments": {"n": i}}]} for i in range(steps)]
    return Agent(
        name="bench-agent",
        model={"provider": "scripted", "turns": [*turns, {"content": "done"}]},
        tools=[add],
        limits={"max_steps": steps + 2, "max_tool_calls": steps + 1, "max_repeats": None},
    )


def workflow(steps: int):
    text = f"""
document: {{dsl: '1.0.3', namespace: bench, name: bench-flow, version: '1.0.0'}}
do:
  - loop:
      for: {{each: i, in: '[range({steps})]'}}
      do:
        - step:
            call: add
            with: {{n: '${{ $i }}'}}
"""
    return build(text, "bench.yaml", functions=[add]).agent


async def one(kind: str, steps: int, folder: str) -> tuple[float, float]:
    a = agent(steps) if kind == "agent" else workflow(steps)
    path = os.path.join(folder, f"{kind}-{time.perf_counter_ns()}.db")
    async with Runtime(path) as rt:
        await rt.run(a, "{}")  # warm-up (imports, compiled programs)
        clear_cache()  # but not the results of the same run: each timed run starts cold
        wall, cpu = time.perf_counter(), time.process_time()
        result = await rt.run(a, "{}")
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert result.status == "succeeded", result.reason
    return wall / steps * 1e6, cpu / steps * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    kinds = ["agent", "workflow"]
    samples: dict[str, list[tuple[float, float]]] = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory() as folder:
        for r in range(args.rounds):
            for kind in kinds[r % 2 :] + kinds[: r % 2]:
                for _ in range(args.runs):
                    samples[kind].append(await one(kind, args.steps, folder))
    out = {
        k: {
            "us_per_step": statistics.median(w for w, _ in v),
            "cpu_us_per_step": statistics.median(c for _, c in v),
            "min": min(w for w, _ in v),
            "max": max(w for w, _ in v),
        }
        for k, v in samples.items()
    }
    ratio = out["workflow"]["us_per_step"] / out["agent"]["us_per_step"]
    if args.json:
        print(json.dumps({**out, "ratio": ratio, "steps": args.steps}))
        return
    print(f"{args.steps} steps, {args.rounds} rounds x {args.runs} runs, SQLite WAL+NORMAL")
    print(f"{'':10} {'µs/step':>9} {'min-max':>15} {'CPU µs/step':>12} {'x agent':>8}")
    for k in kinds:
        o = out[k]
        print(
            f"{k:10} {o['us_per_step']:9.0f} {o['min']:7.0f}-{o['max']:<7.0f}"
            f" {o['cpu_us_per_step']:12.0f} {o['us_per_step'] / out['agent']['us_per_step']:8.2f}"
        )
    print(
        f"a workflow step costs {out['workflow']['us_per_step'] - out['agent']['us_per_step']:.0f}"
        f" µs more than an agent's tool step ({ratio:.2f}x)"
    )


if __name__ == "__main__":
    asyncio.run(main())
