"""Load test of `bosun serve` on loopback: N concurrent API clients, each submitting a run of
the `sim` agent and polling it until it finishes, for a bounded number of runs.

    .venv/bin/python bench/api_load.py --clients 200 --runs 2000

Starts `bosun serve` in a subprocess (fresh SQLite database, in-process workers), reads the
first admin key it prints, then reports: submit-and-complete throughput (runs finished per
second, from the first submit to the last completion) and API latency p50/p99 of every
request (submits and polls), plus each kind separately. Bounded: it stops after --runs runs
or --timeout seconds, whichever comes first, and always stops the server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
TERMINAL = {"succeeded", "failed", "cancelled", "limit_exceeded", "killed", "needs_attention"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(db: str, port: int, concurrency: int) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bosun", "serve", "--db", db, "--port", str(port),
         "--agent", str(HERE / "api_load_agent.py"), "--concurrency", str(concurrency)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    key = None
    assert proc.stdout is not None
    while key is None:
        line = proc.stdout.readline()
        if not line and (proc.poll() is not None or time.monotonic() > deadline):
            proc.kill()
            raise SystemExit("bosun serve did not start")
        match = re.search(r"(bosun_[0-9a-f]{12}_\S+)", line)
        key = match.group(1) if match else None
    return proc, key


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def run_load(url: str, key: str, clients: int, runs: int, timeout: float, poll: float):
    latencies: dict[str, list[float]] = {"submit": [], "poll": []}
    errors: list[str] = []
    durations: list[float] = []
    next_run = 0
    finished_at: list[float] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {key}"}, limits=limits, timeout=60
    ) as client:
        start = time.perf_counter()
        stop_at = start + timeout

        async def timed(kind: str, method: str, path: str, **kw) -> httpx.Response | None:
            t0 = time.perf_counter()
            try:
                response = await client.request(method, path, **kw)
            except httpx.HTTPError as exc:
                errors.append(f"{kind}: {type(exc).__name__}")
                return None
            latencies[kind].append(time.perf_counter() - t0)
            if response.status_code >= 400:
                errors.append(f"{kind}: HTTP {response.status_code}")
                return None
            return response

        async def worker(i: int) -> None:
            nonlocal next_run
            while next_run < runs and time.perf_counter() < stop_at:
                next_run += 1
                t0 = time.perf_counter()
                body = {"agent": "loadtest", "input": f"job {next_run}", "user": f"u{i}",
                        "tags": {"client": str(i % 10)}}  # fmt: skip
                r = await timed("submit", "POST", "/api/runs", json=body)
                if r is None:
                    continue
                run_id = r.json()["run_id"]
                while time.perf_counter() < stop_at:
                    await asyncio.sleep(poll)
                    r = await timed("poll", "GET", f"/api/runs/{run_id}")
                    if r is not None and r.json()["status"] in TERMINAL:
                        durations.append(time.perf_counter() - t0)
                        finished_at.append(time.perf_counter())
                        break

        await asyncio.gather(*(worker(i) for i in range(clients)))
        wall = (max(finished_at) if finished_at else time.perf_counter()) - start
    every = latencies["submit"] + latencies["poll"]
    ms = 1000.0
    return {
        "clients": clients,
        "runs_completed": len(durations),
        "wall_seconds": round(wall, 2),
        "throughput_runs_per_s": round(len(durations) / wall, 1) if wall else 0.0,
        "requests": len(every),
        "requests_per_s": round(len(every) / wall, 1) if wall else 0.0,
        "api_p50_ms": round(pct(every, 0.50) * ms, 1),
        "api_p99_ms": round(pct(every, 0.99) * ms, 1),
        "submit_p50_ms": round(pct(latencies["submit"], 0.50) * ms, 1),
        "submit_p99_ms": round(pct(latencies["submit"], 0.99) * ms, 1),
        "poll_p50_ms": round(pct(latencies["poll"], 0.50) * ms, 1),
        "poll_p99_ms": round(pct(latencies["poll"], 0.99) * ms, 1),
        "run_latency_p50_s": round(statistics.median(durations), 3) if durations else None,
        "errors": len(errors),
        "error_kinds": sorted(set(errors))[:5],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--runs", type=int, default=2000, help="stop after this many runs")
    parser.add_argument("--timeout", type=float, default=120.0, help="and after this long (s)")
    parser.add_argument("--poll", type=float, default=0.1, help="seconds between status polls")
    parser.add_argument("--concurrency", type=int, default=400, help="server's worker slots")
    parser.add_argument("--url", help="load this running server instead (with --key)")
    parser.add_argument("--key", help="an operator or admin key of --url")
    args = parser.parse_args()
    if args.url:
        result = asyncio.run(
            run_load(args.url, args.key, args.clients, args.runs, args.timeout, args.poll)
        )
        print(json.dumps(result, indent=2))
        return 0 if result["errors"] == 0 else 1
    with tempfile.TemporaryDirectory(prefix="bosun-load-") as folder:
        port = free_port()
        proc, key = start_server(os.path.join(folder, "bosun.db"), port, args.concurrency)
        try:
            result = asyncio.run(
                run_load(f"http://127.0.0.1:{port}", key, args.clients, args.runs,
                         args.timeout, args.poll)
            )  # fmt: skip
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    result["agent"] = "sim: 3 model calls (20 ms each) + 2 tool calls per run"
    print(json.dumps(result, indent=2))
    return 0 if result["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
