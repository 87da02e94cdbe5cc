"""Run Bosun and its peers, one after the other, on the same workload; print a table with ratios.

    .venv/bin/python bench/run.py              # full: 5 timed runs of 50 steps, 1,000-run test
    .venv/bin/python bench/run.py --quick      # 3 timed runs, 200-run concurrency test

Every framework runs in its own subprocess (its imports and memory never touch another's), with
its database files in a fresh temporary folder. Results are also written as JSON to
bench/results/ (not committed). See bench/README.md for what is measured and how.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))

WORKERS = {
    "bosun": ("bosun_bench.py", {}),
    "bosun (scripted model)": ("bosun_bench.py", {"BOSUN_BENCH_PROVIDER": "scripted"}),
    "langgraph": ("peer_langgraph.py", {}),
    "dbos": ("peer_dbos.py", {}),
}

PROFILE_TITLES = {
    "matched": "every framework on WAL + synchronous=NORMAL (a commit survives a killed process)",
    "full": "every framework on WAL + synchronous=FULL (an fsync per commit)",
    "shipped": "every framework with the SQLite settings it ships with",
}

TARGET_RATIO = 10.0
TARGET_STEPS_PER_SECOND = 5000.0


def run_worker(script: str, argv: list[str], env: dict[str, str], timeout: float) -> dict[str, Any]:
    cmd = [sys.executable, os.path.join(HERE, script), *argv]
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **env},
        cwd=HERE,
    )
    if proc.returncode != 0:
        raise SystemExit(
            f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}{proc.stdout[-1000:]}"
        )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def fmt_us(value: float) -> str:
    return f"{value:,.0f}"


def print_table(profile: str, rows: list[dict[str, Any]], storage_steps: list[str]) -> None:
    base = next(r for r in rows if r["framework"] == "bosun")["us_per_step_median"]
    print(f"\nProfile '{profile}': {PROFILE_TITLES[profile]}")
    header = ["framework", "sqlite settings", "µs/step (median)", "min-max", "CPU µs/step"]
    header += [f"bytes/step @{n}" for n in storage_steps]
    header += ["vs Bosun"]
    lines = [header]
    for r in rows:
        s = r["settings"]
        lines.append(
            [
                r["framework"],
                f"{s['journal_mode']}/{s['synchronous']}",
                fmt_us(r["us_per_step_median"]),
                f"{fmt_us(r['us_per_step_min'])}-{fmt_us(r['us_per_step_max'])}",
                fmt_us(r["cpu_us_per_step_median"]),
                *[f"{r['bytes_per_step'][n]:,.0f}" for n in storage_steps],
                f"{r['us_per_step_median'] / base:.1f}x",
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for i, line in enumerate(lines):
        print(
            "  ".join(
                cell.ljust(w) if j < 2 else cell.rjust(w)
                for j, (cell, w) in enumerate(zip(line, widths, strict=True))
            )
        )
        if i == 0:
            print("  ".join("-" * w for w in widths))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=None, help="timed runs per framework (5)")
    parser.add_argument("--steps", type=int, default=50, help="steps per timed run (50)")
    parser.add_argument("--storage-steps", default="50,500", help="run lengths for bytes/step")
    parser.add_argument(
        "--profiles", default="matched,shipped", help="comma list of: matched, full, shipped"
    )
    parser.add_argument("--frameworks", default=",".join(WORKERS), help="comma list")
    parser.add_argument("--concurrent-runs", type=int, default=None, help="(1000)")
    parser.add_argument("--tool-steps", type=int, default=10, help="per run, concurrency test")
    parser.add_argument("--no-concurrency", action="store_true")
    parser.add_argument("--quick", action="store_true", help="3 timed runs, 200 concurrent runs")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per worker")
    args = parser.parse_args()
    runs = args.runs or (3 if args.quick else 5)
    concurrent = args.concurrent_runs or (200 if args.quick else 1000)
    profiles = [p for p in args.profiles.split(",") if p]
    frameworks = [f for f in args.frameworks.split(",") if f]
    storage_steps = [n for n in args.storage_steps.split(",") if n]

    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "command": " ".join(sys.argv),
        "per_step": {},
    }
    print(
        f"{report['date']}  {os.cpu_count()} CPUs  Python {platform.python_version()}  "
        f"{runs} timed runs of {args.steps} steps (median), bytes/step at {args.storage_steps} steps"
    )
    with tempfile.TemporaryDirectory(prefix="bosun-bench-") as tmp:
        for profile in profiles:
            rows = []
            for name in frameworks:
                script, env = WORKERS[name]
                folder = os.path.join(tmp, f"{profile}-{script}-{len(rows)}")
                os.makedirs(folder)
                argv = ["--dir", folder, "--runs", str(runs), "--steps", str(args.steps)]
                argv += ["--storage-steps", args.storage_steps, "--profile", profile]
                print(f"  {profile}: {name} ...", file=sys.stderr, flush=True)
                rows.append(run_worker(script, argv, env, args.timeout))
            report["per_step"][profile] = rows
            print_table(profile, rows, storage_steps)

        if not args.no_concurrency:
            folder = os.path.join(tmp, "concurrency")
            os.makedirs(folder)
            print("  concurrency: bosun ...", file=sys.stderr, flush=True)
            argv = [
                "--dir",
                folder,
                "--runs",
                str(concurrent),
                "--tool-steps",
                str(args.tool_steps),
            ]
            c = run_worker("concurrency.py", argv, {}, args.timeout)
            report["concurrency"] = c
            print(
                f"\nConcurrency (Bosun, sim provider, {c['model_latency_ms']:.0f} ms model latency): "
                f"{c['runs']:,} runs x {c['steps'] // c['runs']} steps = {c['steps']:,} steps in "
                f"{c['wall_seconds']:.2f} s -> {c['steps_per_second']:,.0f} steps/s "
                f"(ceiling {c['ideal_steps_per_second']:,.0f}); {c['group_commits']:,} group "
                f"commits; peak RSS {c['peak_rss_mib']:.0f} MiB "
                f"({c['rss_before_mib']:.0f} MiB before the runs started)"
            )

    print("\nTargets:")
    matched = report["per_step"].get("matched") or next(iter(report["per_step"].values()), None)
    if matched:
        by = {r["framework"]: r for r in matched}
        if "bosun" in by and "langgraph" in by:
            ratio = by["langgraph"]["us_per_step_median"] / by["bosun"]["us_per_step_median"]
            ok = "MET" if ratio >= TARGET_RATIO else "MISSED"
            print(
                f"  per-step overhead >= {TARGET_RATIO:.0f}x lower than LangGraph: {ratio:.1f}x  {ok}"
            )
        if "bosun" in by and len(storage_steps) >= 2:
            b = by["bosun"]["bytes_per_step"]
            first, last = b[storage_steps[0]], b[storage_steps[-1]]
            ok = "MET" if abs(last - first) <= 0.1 * first else "MISSED"
            print(
                f"  storage per step constant: {first:,.0f} B @{storage_steps[0]} vs "
                f"{last:,.0f} B @{storage_steps[-1]}  {ok}"
            )
    if "concurrency" in report:
        sps = report["concurrency"]["steps_per_second"]
        ok = "MET" if sps >= TARGET_STEPS_PER_SECOND else "MISSED"
        print(
            f"  >= {TARGET_STEPS_PER_SECOND:,.0f} steps/s with {concurrent:,} runs: {sps:,.0f}  {ok}"
        )

    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    out = os.path.join(HERE, "results", time.strftime("%Y%m%d-%H%M%S") + ".json")
    with open(out, "w") as f:
        json.dump(report, f, indent=2)
    print(f"\nJSON: {os.path.relpath(out)}")


if __name__ == "__main__":
    main()
