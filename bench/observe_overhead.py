"""Per-step overhead of observing (OpenTelemetry traces + Prometheus metrics) on versus off.

The shared workload: a 50-step run (the `sim` model with zero latency; 49 steps ask for a
trivial async tool, the last answers) on SQLite in WAL mode. "on" attaches an `Observer` with
the trace projection (spans built with the SDK and handed to a BatchSpanProcessor, whose
exporter discards them: no network in the measure) and the metrics sink, and counts the time
to drain the observer's queue inside each run's measure. Modes alternate run by run. The added
cost is the median of the paired differences (each off run and the on run after it); the
difference of the medians and of the means are printed beside it. The same paired median is
also taken of the process's CPU time (all threads, the span processor's included): on a
machine shared with other work, wall time also counts the moments this process waited for a
core, CPU time much less so.

    .venv/bin/python bench/observe_overhead.py --runs 60 --steps 50
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time

from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from bosun import Agent, Limits, Runtime, tool
from bosun.observe.feed import Observer
from bosun.observe.metrics import Metrics
from bosun.observe.tracing import TraceSink, build_tracer_provider

UNLIMITED = Limits(
    max_steps=None, max_tool_calls=None, max_repeats=None, max_wall_seconds=None, max_tokens=None
)


@tool(effect="read", idempotent=True)
async def add(n: int) -> int:
    """Add one."""
    return n + 1


class Discard(SpanExporter):
    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans):  # type: ignore[no-untyped-def]
        self.spans += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


async def one_run(
    rt: Runtime, agent: Agent, steps: int, observer: Observer | None
) -> tuple[float, float]:
    """Wall and CPU seconds per step, the observer's drain included."""
    started, cpu = time.perf_counter(), time.process_time()
    result = await rt.run(agent, "go")
    if observer is not None:
        await observer.flush()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    if result.status != "succeeded" or result.steps != steps:
        raise SystemExit(f"run ended {result.status} after {result.steps} steps")
    return elapsed / steps, cpu / steps


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args()
    agent = Agent(
        name="bench",
        model={"provider": "sim", "latency_ms": 0, "tool_steps": args.steps - 1},
        tools=[add],
        limits=UNLIMITED,
    )
    with tempfile.TemporaryDirectory() as tmp:
        off = Runtime(os.path.join(tmp, "off.db"))
        on = Runtime(os.path.join(tmp, "on.db"))
        await off.open()
        await on.open()
        exporter = Discard()
        provider = build_tracer_provider(exporter)
        observer = await Observer(
            on.store, [TraceSink(on.store, provider), Metrics(on.store)]
        ).attach(on)
        for _ in range(3):  # warm-up
            await one_run(off, agent, args.steps, None)
            await one_run(on, agent, args.steps, observer)
        times: dict[str, list[float]] = {"off": [], "on": []}
        cpu: dict[str, list[float]] = {"off": [], "on": []}
        for _ in range(args.runs):
            for mode, rt, obs in (("off", off, None), ("on", on, observer)):
                wall, used = await one_run(rt, agent, args.steps, obs)
                times[mode].append(wall)
                cpu[mode].append(used)
        await observer.close()
        provider.shutdown()
        await off.close()
        await on.close()
    off_us = statistics.median(times["off"]) * 1e6
    on_us = statistics.median(times["on"]) * 1e6
    # Each off run is followed by an on run: the median of those paired differences is not
    # thrown off by a run that happened to contain one of SQLite's WAL checkpoints (a few ms,
    # every few runs, on either side), which the difference of two medians is.
    paired = statistics.median(b - a for a, b in zip(times["off"], times["on"], strict=True)) * 1e6
    mean_off = statistics.fmean(times["off"]) * 1e6
    mean_on = statistics.fmean(times["on"]) * 1e6
    cpu_off = statistics.median(cpu["off"]) * 1e6
    cpu_paired = statistics.median(b - a for a, b in zip(cpu["off"], cpu["on"], strict=True)) * 1e6
    print(
        json.dumps(
            {
                "steps": args.steps,
                "runs": args.runs,
                "per_step_us_off": round(off_us, 1),
                "per_step_us_on": round(on_us, 1),
                "added_us_per_step": round(paired, 1),
                "overhead_ratio": round(1 + paired / off_us, 3),
                "difference_of_medians_us": round(on_us - off_us, 1),
                "difference_of_means_us": round(mean_on - mean_off, 1),
                "cpu_us_per_step_off": round(cpu_off, 1),
                "added_cpu_us_per_step": round(cpu_paired, 1),
                "cpu_overhead_ratio": round(1 + cpu_paired / cpu_off, 3),
                "spans_exported": exporter.spans,
                "dropped": observer.dropped,
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
