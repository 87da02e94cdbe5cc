"""Run Bosun and its peers on the same workload, interleaved in rounds; print a table with ratios.

    .venv/bin/python bench/run.py              # full: 5 rounds of 50-step runs, 1,000-run test
    .venv/bin/python bench/run.py --quick      # 3 rounds, 200-run concurrency test
    .venv/bin/python bench/run.py --mcp        # also: per MCP tool call, Bosun vs the bare SDK

Every framework runs in its own subprocess (its imports and memory never touch another's), with
its database files in a fresh temporary folder. Storage is measured once per framework and
profile; time per step is sampled in rounds: each round starts every framework's worker once
(one warm-up run, then `--runs` timed runs), in an order rotated by one each round, so that a
drift in the machine's speed over minutes hits every framework alike. Medians are over all the
samples of all rounds. Results (every sample, with its round) are also written as JSON to
bench/results/ (not committed). See bench/README.md for what is measured and how.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
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


def rotated(names: list[str], round_index: int) -> list[str]:
    """The round's order: `names` rotated left by the round's index, so each leads once."""
    k = round_index % len(names)
    return names[k:] + names[:k]


def worker_argv(args: argparse.Namespace, folder: str, profile: str, only: str) -> list[str]:
    argv = ["--dir", folder, "--steps", str(args.steps), "--profile", profile, "--only", only]
    if only == "time":
        return [*argv, "--runs", str(args.runs)]
    return [*argv, "--storage-steps", args.storage_steps]


def merge(name: str, storage: dict[str, Any], timed: list[dict[str, Any]]) -> dict[str, Any]:
    """One table row: a framework's storage result and its timed samples from every round."""
    samples = [
        {"round": t["round"], "position": t["position"], "us_per_step": w, "cpu_us_per_step": c}
        for t in timed
        for w, c in zip(t["us_per_step_samples"], t["cpu_us_per_step_samples"], strict=True)
    ]
    settings = [t["settings"] for t in timed]
    if any(s != settings[0] for s in settings):
        raise SystemExit(f"{name}: SQLite settings differ between rounds: {settings}")
    wall = [s["us_per_step"] for s in samples]
    return {
        "framework": storage["framework"],
        "profile": storage["profile"],
        "settings": settings[0],
        "steps": storage["steps"],
        "rounds": len(timed),
        "runs_per_round": timed[0]["runs"],
        "runs": len(samples),
        "us_per_step_median": statistics.median(wall),
        "us_per_step_min": min(wall),
        "us_per_step_max": max(wall),
        "us_per_step_samples": wall,
        "cpu_us_per_step_median": statistics.median(s["cpu_us_per_step"] for s in samples),
        "samples": samples,
        "bytes_per_step": storage["bytes_per_step"],
    }


def round_ratios(rows: list[dict[str, Any]], rounds: int) -> dict[str, dict[str, Any]]:
    """Per framework, each round's median / Bosun's median in the same round, and their median."""
    by = {r["framework"]: r for r in rows}
    if "bosun" not in by:
        return {}

    def in_round(row: dict[str, Any], n: int) -> float:
        return statistics.median(s["us_per_step"] for s in row["samples"] if s["round"] == n)

    out = {}
    for r in rows:
        if r["framework"] == "bosun":
            continue
        ratios = [in_round(r, n) / in_round(by["bosun"], n) for n in range(1, rounds + 1)]
        out[r["framework"]] = {"per_round": ratios, "median": statistics.median(ratios)}
    return out


def print_lines(lines: list[list[str]], left: int) -> None:
    """Columns padded to width, the first `left` ones left-aligned; a rule under the header."""
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    for i, line in enumerate(lines):
        print(
            "  ".join(
                cell.ljust(w) if j < left else cell.rjust(w)
                for j, (cell, w) in enumerate(zip(line, widths, strict=True))
            )
        )
        if i == 0:
            print("  ".join("-" * w for w in widths))


def print_table(profile: str, rows: list[dict[str, Any]], storage_steps: list[str]) -> None:
    bosun = next((r for r in rows if r["framework"] == "bosun"), None)
    print(f"\nProfile '{profile}': {PROFILE_TITLES[profile]}")
    header = ["framework", "sqlite settings", "µs/step (median)", "min-max", "CPU µs/step"]
    header += [f"bytes/step @{n}" for n in storage_steps]
    header += ["vs Bosun"]
    lines = [header]
    for r in rows:
        s = r["settings"]
        ratio = r["us_per_step_median"] / bosun["us_per_step_median"] if bosun else None
        lines.append(
            [
                r["framework"],
                f"{s['journal_mode']}/{s['synchronous']}",
                fmt_us(r["us_per_step_median"]),
                f"{fmt_us(r['us_per_step_min'])}-{fmt_us(r['us_per_step_max'])}",
                fmt_us(r["cpu_us_per_step_median"]),
                *[f"{r['bytes_per_step'][n]:,.0f}" for n in storage_steps],
                f"{ratio:.1f}x" if ratio is not None else "-",
            ]
        )
    print_lines(lines, left=2)


def print_round_ratios(ratios: dict[str, dict[str, Any]], rounds: int) -> None:
    if not ratios:
        return
    print("\nPer round, median in the round / Bosun's median in the same round:")
    header = ["framework", *[f"round {n}" for n in range(1, rounds + 1)], "median"]
    lines = [header]
    for name, r in ratios.items():
        lines.append([name, *[f"{x:.1f}x" for x in r["per_round"]], f"{r['median']:.1f}x"])
    print_lines(lines, left=1)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--rounds", type=int, default=None, help="rounds of timed samples (5; 3 with --quick)"
    )
    parser.add_argument(
        "--runs", type=int, default=3, help="timed runs per framework per round (3)"
    )
    parser.add_argument("--steps", type=int, default=50, help="steps per timed run (50)")
    parser.add_argument("--storage-steps", default="50,500", help="run lengths for bytes/step")
    parser.add_argument(
        "--profiles", default="matched,shipped", help="comma list of: matched, full, shipped"
    )
    parser.add_argument("--frameworks", default=",".join(WORKERS), help="comma list")
    parser.add_argument("--concurrent-runs", type=int, default=None, help="(1000)")
    parser.add_argument("--tool-steps", type=int, default=10, help="per run, concurrency test")
    parser.add_argument("--no-concurrency", action="store_true")
    parser.add_argument(
        "--mcp",
        action="store_true",
        help="also measure Bosun's own time per MCP tool call vs the bare SDK (mcp_overhead.py)",
    )
    parser.add_argument("--quick", action="store_true", help="3 rounds, 200 concurrent runs")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per worker")
    args = parser.parse_args()
    rounds = args.rounds or (3 if args.quick else 5)
    if rounds < 1 or args.runs < 1:
        parser.error("--rounds and --runs must be at least 1")
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
        "rounds": rounds,
        "runs_per_round": args.runs,
        "per_step": {},
        "round_orders": {},
        "round_ratios": {},
    }
    print(
        f"{report['date']}  {os.cpu_count()} CPUs  Python {platform.python_version()}  "
        f"{rounds} rounds x {args.runs} timed run(s) of {args.steps} steps per framework "
        f"(median over all rounds), bytes/step at {args.storage_steps} steps"
    )
    with tempfile.TemporaryDirectory(prefix="bosun-bench-") as tmp:
        for profile in profiles:
            folders, storage = {}, {}
            for i, name in enumerate(frameworks):
                script, env = WORKERS[name]
                folders[name] = os.path.join(tmp, f"{profile}-{i}-{script.removesuffix('.py')}")
                os.makedirs(folders[name])
                print(f"  {profile}: storage, {name} ...", file=sys.stderr, flush=True)
                argv = worker_argv(args, folders[name], profile, "storage")
                storage[name] = run_worker(script, argv, env, args.timeout)

            timed: dict[str, list[dict[str, Any]]] = {name: [] for name in frameworks}
            orders = []
            for n in range(1, rounds + 1):
                order = rotated(frameworks, n - 1)
                orders.append(order)
                print(
                    f"  {profile}: round {n}/{rounds}: {', '.join(order)} ...",
                    file=sys.stderr,
                    flush=True,
                )
                for position, name in enumerate(order):
                    script, env = WORKERS[name]
                    argv = worker_argv(args, folders[name], profile, "time")
                    result = run_worker(script, argv, env, args.timeout)
                    timed[name].append({**result, "round": n, "position": position})

            rows = [merge(name, storage[name], timed[name]) for name in frameworks]
            ratios = round_ratios(rows, rounds)
            report["per_step"][profile] = rows
            report["round_orders"][profile] = orders
            report["round_ratios"][profile] = ratios
            print_table(profile, rows, storage_steps)
            print_round_ratios(ratios, rounds)

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

        if args.mcp:
            print("  mcp: sdk, bosun source, bosun run ...", file=sys.stderr, flush=True)
            mcp = run_worker("mcp_overhead.py", ["--json"], {}, args.timeout)
            report["mcp_overhead"] = mcp
            from mcp_overhead import print_report as print_mcp

            print()
            print_mcp(mcp)

    print("\nTargets:")
    headline = (
        "matched" if "matched" in report["per_step"] else next(iter(report["per_step"]), None)
    )
    matched = report["per_step"].get(headline) if headline else None
    if matched:
        by = {r["framework"]: r for r in matched}
        if "bosun" in by and "langgraph" in by:
            ratio = by["langgraph"]["us_per_step_median"] / by["bosun"]["us_per_step_median"]
            per_round = report["round_ratios"][headline]["langgraph"]["median"]
            ok = "MET" if ratio >= TARGET_RATIO else "MISSED"
            print(
                f"  per-step overhead >= {TARGET_RATIO:.0f}x lower than LangGraph: {ratio:.1f}x  {ok}"
                f"  (ratio of the medians; median of the per-round ratios: {per_round:.1f}x)"
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
