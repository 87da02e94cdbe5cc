"""Bosun's own time per MCP tool call, beyond the server's: against the bare SDK client.

    .venv/bin/python bench/mcp_overhead.py [--calls 300] [--rounds 3] [--run-steps 50] [--json]

One MCP server (the official SDK's `MCPServer`, this file run with `--serve`, serving a
trivial `echo(text)` tool) is called, in the same process and the same rounds, three ways,
over stdio and over Streamable HTTP:

- **sdk**: the bare SDK, `mcp.Client(...).call_tool("echo", ...)`: the server's time plus
  the transport and the SDK, the floor any client pays;
- **bosun source**: what Bosun's engine does per MCP call below the step loop: the pool's
  pin check (the rug-pull defence: `SourcePool.changed`) and `SourcePool.invoke` through
  Bosun's MCP tool source (`tools/mcp/`: the idempotency key in `_meta`, the timeout, the
  result made JSON-ready and bounded);
- **bosun run**: a whole Bosun run whose scripted model asks for `--run-steps` calls of the
  tool, one per step (each step journaled on SQLite, WAL + NORMAL: model answer, policy,
  tool start, tool result): wall time of the run divided by its calls.

A round measures each way once (`--calls` timed calls after `--warmup`; the bosun-run row:
`--runs` runs), in an order rotated by one each round, so a drift in the machine's speed
hits every way alike. Per-call samples from all rounds are pooled: median and p99 in
microseconds. "Bosun's own" is a Bosun row's median minus the sdk row's, and "x sdk" the
ratio of the medians. "CPU" is this process's CPU time per call (the client's alone: the
server is another process), the median over the batches; on a loaded machine it is
disturbed far less than wall time, so "CPU own" (a Bosun row's CPU minus the sdk row's) is
the steadier measure of Bosun's own work per call. The bosun-run samples are per-run means (one per run), so their p99
is close to their maximum. Over stdio each way starts its own server process; over HTTP
all three reach one server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

HERE = os.path.abspath(__file__)
TEXT = "hello from the bench"


def serve(http_port: int | None) -> None:
    """The benchmark's MCP server: one trivial tool."""
    from mcp.server.mcpserver import MCPServer
    from mcp.types import ToolAnnotations

    server = MCPServer("bosun-bench", version="1.0")

    def echo(text: str) -> str:
        return text

    server.add_tool(
        echo,
        name="echo",
        description="Echo the text back.",
        annotations=ToolAnnotations(readOnlyHint=True, idempotentHint=True),
    )
    if http_port is None:
        server.run()
    else:
        server.run(transport="streamable-http", host="127.0.0.1", port=http_port)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class HttpServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self.proc = subprocess.Popen(
            [sys.executable, HERE, "--serve", "--http-port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        self.close()
        raise SystemExit("the benchmark's HTTP MCP server did not start within 60 s")

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def server_config(transport: str, url: str | None) -> dict[str, Any]:
    if transport == "stdio":
        return {"name": "bench", "command": sys.executable, "args": [HERE, "--serve"]}
    return {"name": "bench", "url": url}


Samples = tuple[list[float], list[float]]  # wall µs per call, CPU µs per call of a batch


async def timed(call: Callable[[], Awaitable[Any]], calls: int, warmup: int) -> Samples:
    for _ in range(warmup):
        await call()
    samples = []
    cpu = time.process_time_ns()
    for _ in range(calls):
        start = time.perf_counter_ns()
        await call()
        samples.append((time.perf_counter_ns() - start) / 1000)
    return samples, [(time.process_time_ns() - cpu) / 1000 / calls]


async def measure_sdk(config: dict[str, Any], calls: int, warmup: int) -> Samples:
    import httpx2
    from mcp import Client, StdioServerParameters
    from mcp.client.stdio import stdio_client
    from mcp.client.streamable_http import streamable_http_client

    async def run(client: Any) -> Samples:
        async def call() -> None:
            result = await client.call_tool("echo", {"text": TEXT})
            assert not result.is_error

        return await timed(call, calls, warmup)

    if "command" in config:
        params = StdioServerParameters(command=config["command"], args=config["args"])
        with open(os.devnull, "w") as errlog:
            async with Client(stdio_client(params, errlog=errlog)) as client:
                return await run(client)
    async with (
        httpx2.AsyncClient() as http,
        Client(streamable_http_client(config["url"], http_client=http)) as client,
    ):
        return await run(client)


async def measure_source(config: dict[str, Any], calls: int, warmup: int) -> Samples:
    from bosun import Agent
    from bosun.spec.tool import ToolContext
    from bosun.tools.mcp import mcp_tools
    from bosun.tools.sources import Call, SourcePool

    agent = Agent(name="bench", model="scripted", tools=mcp_tools(config, effects={"*": "read"}))
    pin = agent.pins["echo"]
    pool = SourcePool()
    n = 0

    async def call() -> None:
        nonlocal n
        n += 1
        changed, _ = await pool.changed(pin)
        assert not changed
        context = ToolContext(
            run_id="run_bench", call_id=f"c{n}", idempotency_key=f"k{n}", attempt=1
        )
        result = await pool.invoke(pin, {"text": TEXT}, Call(context, 30.0, None))  # type: ignore[arg-type]
        assert result in (TEXT, {"result": TEXT})  # structured content, as the SDK serves it

    try:
        return await timed(call, calls, warmup)
    finally:
        await pool.close()


async def measure_run(config: dict[str, Any], steps: int, runs: int, folder: str) -> Samples:
    from bosun import Agent, Limits, Runtime
    from bosun.tools.mcp import mcp_tools

    turns = [{"tool_calls": [{"name": "echo", "arguments": {"text": TEXT}}]}] * steps
    agent = Agent(
        name="bench-run",
        model={"provider": "scripted", "turns": [*turns, {"content": "done"}]},
        tools=mcp_tools(config, effects={"*": "read"}),
        limits=Limits(
            max_steps=None,
            max_tool_calls=None,
            max_repeats=None,
            max_wall_seconds=None,
            max_tokens=None,
        ),
    )
    samples, cpu = [], []
    db = os.path.join(folder, f"run-{time.monotonic_ns()}.db")
    async with Runtime(db) as rt:
        warm = await rt.run(agent, "warm up")  # opens the worker's connection
        assert warm.status == "succeeded", warm.reason
        for _ in range(runs):
            start, started_cpu = time.perf_counter_ns(), time.process_time_ns()
            result = await rt.run(agent, "go")
            samples.append((time.perf_counter_ns() - start) / 1000 / steps)
            cpu.append((time.process_time_ns() - started_cpu) / 1000 / steps)
            assert result.status == "succeeded", result.reason
    return samples, cpu


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


WAYS = ("sdk", "bosun source", "bosun run")


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {
        "calls": args.calls,
        "rounds": args.rounds,
        "run_steps": args.run_steps,
        "runs": args.runs,
        "transports": {},
    }
    http = HttpServer() if "http" in args.transports else None
    try:
        with tempfile.TemporaryDirectory(prefix="bosun-mcp-bench-") as folder:
            for transport in args.transports:
                config = server_config(transport, http.url if http else None)
                samples: dict[str, list[float]] = {way: [] for way in WAYS}
                cpu: dict[str, list[float]] = {way: [] for way in WAYS}
                for n in range(args.rounds):
                    order = WAYS[n % 3 :] + WAYS[: n % 3]
                    print(f"  {transport}: round {n + 1}/{args.rounds}", file=sys.stderr)
                    for way in order:
                        if way == "sdk":
                            got = await measure_sdk(config, args.calls, args.warmup)
                        elif way == "bosun source":
                            got = await measure_source(config, args.calls, args.warmup)
                        else:
                            got = await measure_run(config, args.run_steps, args.runs, folder)
                        samples[way].extend(got[0])
                        cpu[way].extend(got[1])
                report["transports"][transport] = {
                    way: {
                        "median_us": statistics.median(s),
                        "p99_us": p99(s),
                        "samples": len(s),
                        "cpu_us": statistics.median(cpu[way]),
                    }
                    for way, s in samples.items()
                }
    finally:
        if http is not None:
            http.close()
    return report


def print_report(report: dict[str, Any]) -> None:
    print(
        f"MCP tool call, per call (µs): {report['calls']} calls x {report['rounds']} rounds "
        f"per way; bosun run: {report['runs']} runs of {report['run_steps']} calls per round"
    )
    header = ["transport", "way", "median", "p99", "Bosun's own", "x sdk", "CPU", "CPU own"]
    lines = [header]
    for transport, rows in report["transports"].items():
        base, base_cpu = rows["sdk"]["median_us"], rows["sdk"]["cpu_us"]
        for way, row in rows.items():
            own = row["median_us"] - base
            own_cpu = row["cpu_us"] - base_cpu
            lines.append(
                [
                    transport,
                    way,
                    f"{row['median_us']:,.0f}",
                    f"{row['p99_us']:,.0f}",
                    "-" if way == "sdk" else f"{own:+,.0f}",
                    f"{row['median_us'] / base:.2f}x",
                    f"{row['cpu_us']:,.0f}",
                    "-" if way == "sdk" else f"{own_cpu:+,.0f}",
                ]
            )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for i, line in enumerate(lines):
        cells = [
            c.ljust(w) if j < 2 else c.rjust(w)
            for j, (c, w) in enumerate(zip(line, widths, strict=True))
        ]
        print("  ".join(cells))
        if i == 0:
            print("  ".join("-" * w for w in widths))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--serve", action="store_true", help="be the benchmark's server")
    parser.add_argument("--http-port", type=int, default=None, help="with --serve: over HTTP")
    parser.add_argument("--calls", type=int, default=300, help="timed calls per way per round")
    parser.add_argument("--warmup", type=int, default=30, help="untimed calls first")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--run-steps", type=int, default=50, help="tool calls per bosun run")
    parser.add_argument("--runs", type=int, default=3, help="bosun runs per round")
    parser.add_argument("--transports", default="stdio,http", help="comma list: stdio, http")
    parser.add_argument("--json", action="store_true", help="also print the report as JSON")
    args = parser.parse_args()
    if args.serve:
        serve(args.http_port)
        return
    args.transports = [t for t in args.transports.split(",") if t]
    report = asyncio.run(bench(args))
    print_report(report)
    if args.json:
        sys.path.insert(0, os.path.dirname(HERE))
        from common import emit

        emit(report)


if __name__ == "__main__":
    main()
