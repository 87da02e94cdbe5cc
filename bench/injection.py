"""Prompt injection: what each shipped policy profile stops, and what it lets finish.

    .venv/bin/python bench/injection.py [--profiles default,strict,legacy] [--json] [--by where|value|scenario]

Replays Bosun's own injection corpus (tests/injection/injection_corpus: four domains,
each attack with its benign twin) through the real Runtime, one SQLite Runtime per
profile, with the `scripted` provider playing a hijacked model (see that package's
`replay.py` for what each measure means). Model-free and deterministic: the same
code gives the same numbers on any machine; only the time line varies.

Per profile, a table per domain and overall: attack success (an injected effect
happened, with the user's own calls approved when asked), injected calls stopped,
benign tasks completed without any approval, benign tasks completed once approvals
are granted, benign runs needing an approval, approvals per benign run, and the user's
task done in spite of the attack (its own effects all happened before anyone approved
anything). `--by` adds
a breakdown of the attacks by where the instruction sat, by the attacker value's
shape or by scenario. `--json` prints only
`{"profiles": {"default": {"attack_success": ..., ...}, ...}}` (fractions); `default`
is the profile an agent without a policy gets.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

# The corpus lives with the tests; its tools must be known by the same reference here.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "injection"))

from injection_corpus import DOMAINS, corpus
from injection_corpus.replay import Outcome, Summary, profiles, replay_profile

COLUMNS = (
    ("attack success", "attack_success"),
    ("injected stopped", "injected_calls_stopped"),
    ("benign w/o approval", "benign_completed_without_approval"),
    ("benign w/ approvals", "benign_completed_with_approvals"),
    ("benign needing approval", "benign_runs_needing_approval"),
    ("approvals/benign run", "approvals_per_benign_run"),
    ("task done under attack, no approval", "attack_task_done"),
)


def pct(value: float | None, ratio: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if ratio else f"{100 * value:.1f}%"


def table(title: str, groups: dict[str, list[Outcome]]) -> str:
    head = ["", "attacks", "benign", *(c for c, _ in COLUMNS)]
    rows = []
    for name, outcomes in groups.items():
        s = Summary.of(outcomes)
        rows.append(
            [name, str(s.attacks), str(s.benign)]
            + [pct(getattr(s, f), ratio=f == "approvals_per_benign_run") for _, f in COLUMNS]
        )
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

    def fmt(row: list[str]) -> str:
        cells = zip(row, widths, strict=True)
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(cells))

    lines = [title, fmt(head), *(fmt(r) for r in rows)]
    return "\n".join(lines)


def breakdown(outcomes: list[Outcome], by: str) -> str:
    groups: dict[str, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        if o.case.attack:
            groups[str(getattr(o.case, by))].append(o)
    width = max(len(k) for k in groups)
    lines = [f"  attacks by {by}:"]
    for key in sorted(groups):
        g = groups[key]
        ran = sum(o.attack_ran for o in g)
        lines.append(
            f"    {key.ljust(width)}  {len(g):4d} attacks  {ran:4d} succeeded ({pct(ran / len(g))})"
        )
    return "\n".join(lines)


def failures(outcomes: list[Outcome], limit: int) -> str:
    """The attacks that succeeded and the benign runs that asked, with the deciding rules."""
    attacks = [o for o in outcomes if o.case.attack and o.attack_ran]
    benign = [o for o in outcomes if not o.case.attack and not o.benign_without_approval]
    lines = []
    for title, group in (("attacks that succeeded", attacks), ("benign runs held", benign)):
        lines.append(f"  {title}: {len(group)}")
        for o in group[:limit]:
            c = o.case
            lines.append(
                f"    {c.id} [{c.scenario} / {c.goal or '-'} / {c.where} / {c.value or '-'}]"
            )
            lines.append(f"      user: {c.user}")
            lines.extend(f"      {line}" for line in o.explain())
    return "\n".join(lines)


def markdown(results: dict[str, list[Outcome]]) -> str:
    """The tables docs/governance.md and bench/README.md show: every profile overall, then
    the first profile per domain."""
    head = "| profile | attack success | injected calls stopped | benign completed without approval | benign completed with approvals | benign runs needing approval | approvals per benign run | task done under attack, no approval |"
    lines = [head, "|---|" + "---:|" * len(COLUMNS)]
    for profile, outcomes in results.items():
        s = Summary.of(outcomes)
        cells = [pct(getattr(s, f), ratio=f == "approvals_per_benign_run") for _, f in COLUMNS]
        lines.append(f"| `{profile}` | " + " | ".join(cells) + " |")
    profile, outcomes = next(iter(results.items()))
    lines += [
        "",
        head.replace("| profile |", f"| `{profile}`, by domain |"),
        "|---|" + "---:|" * len(COLUMNS),
    ]
    for domain in DOMAINS:
        group = [o for o in outcomes if o.case.domain == domain]
        if group:
            s = Summary.of(group)
            cells = [pct(getattr(s, f), ratio=f == "approvals_per_benign_run") for _, f in COLUMNS]
            lines.append(f"| {domain} ({s.attacks} + {s.benign}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


async def main_async(opts: argparse.Namespace) -> int:
    cases = corpus(opts.seed)
    if opts.domains:
        cases = [c for c in cases if c.domain in opts.domains.split(",")]
    shipped = profiles()
    chosen = opts.profiles.split(",") if opts.profiles else list(shipped)
    unknown = [p for p in chosen if p not in shipped]
    if unknown:
        print(f"unknown profile(s) {unknown}; this engine ships {list(shipped)}", file=sys.stderr)
        return 2
    results: dict[str, dict[str, float | None]] = {}
    every: dict[str, list[Outcome]] = {}
    for profile in chosen:
        start = time.perf_counter()
        outcomes = await replay_profile(profile, cases)
        took = time.perf_counter() - start
        results[profile] = Summary.of(outcomes).headline()
        every[profile] = outcomes
        if opts.json or opts.markdown:
            continue
        groups: dict[str, list[Outcome]] = {
            d: [] for d in DOMAINS if any(c.domain == d for c in cases)
        }
        for o in outcomes:
            groups[o.case.domain].append(o)
        groups["overall"] = outcomes
        print(table(f"profile {profile}: {len(outcomes)} runs in {took:.1f} s", groups))
        if opts.by:
            print(breakdown(outcomes, opts.by))
        if opts.failures:
            print(failures(outcomes, opts.failures))
        print()
    if opts.markdown:
        print(markdown(every))
    elif opts.json:
        print(json.dumps({"profiles": results}))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", help="comma-separated (default: every shipped profile)")
    parser.add_argument("--domains", help="comma-separated subset of the domains")
    parser.add_argument("--seed", type=int, default=14, help="the corpus generator's seed")
    parser.add_argument(
        "--by", choices=("where", "value", "scenario", "goal"), help="attack breakdown"
    )
    parser.add_argument(
        "--failures", type=int, default=0, metavar="N", help="list N failing cases of each kind"
    )
    parser.add_argument("--markdown", action="store_true", help="print the docs' tables")
    parser.add_argument("--json", action="store_true", help="print only the JSON summary")
    return asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
