"""Cost attribution: tokens and spend by agent, model, tenant, user, session, tag and day.

Computed from the journal (every `model_responded` event carries its model, tokens and cost),
joined with the run's attribution columns. `bosun usage --by agent,model --since 7d`.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from bosun.store.base import Store
from bosun.store.observing import UsageRow


class UsageBy(StrEnum):
    """What usage is summed by: `bosun usage --by`, the API's `group_by`, the Costs page."""

    AGENT = "agent"
    MODEL = "model"
    TENANT = "tenant"
    USER = "user"
    SESSION = "session"
    TAG = "tag"
    DAY = "day"
    RUN = "run"
    ROOT = "root"  # a run tree's top run: what a whole tree spent


DIMENSIONS: tuple[str, ...] = tuple(UsageBy)


@dataclass(slots=True)
class UsageLine:
    key: dict[str, str]
    runs: set[str] = field(default_factory=set)
    model_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            **self.key,
            "runs": len(self.runs),
            "model_calls": self.model_calls,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost": round(self.cost, 8),
        }


def parse_by(text: str) -> tuple[str, ...]:
    dims = tuple(d.strip() for d in text.split(",") if d.strip())
    bad = [d for d in dims if d not in DIMENSIONS]
    if bad or not dims:
        raise ValueError(
            f"--by {text!r}: choose one or more of {', '.join(DIMENSIONS)}, comma-separated"
        )
    return dims


def _values(row: UsageRow, dim: str, tag_key: str | None) -> list[str]:
    if dim == "tag":
        tags = [f"{k}={v}" for k, v in sorted(row.tags.items()) if tag_key is None or k == tag_key]
        return tags or ["(none)"]
    if dim == "day":
        return [time.strftime("%Y-%m-%d", time.gmtime(row.ts))]
    if dim == "run":
        return [row.run_id]
    value = getattr(row, dim)
    return [value if value is not None else "(none)"]


def aggregate(
    rows: Iterable[UsageRow], by: tuple[str, ...], *, tag_key: str | None = None
) -> list[UsageLine]:
    """Sum usage per combination of `by` values, most expensive first. A run with several
    tags counts under each of them (so `--by tag` totals can exceed the grand total).
    `by=()` sums everything into one line (none without rows): the grand total.

    The one usage aggregator: `bosun usage`, the API's `/usage` and the Costs page all
    sum through it. A run whose journal was garbage-collected arrives as one summary row
    (`model` "(journal removed)"): its tokens and cost count, but it is no model call."""
    lines: dict[tuple[str, ...], UsageLine] = {}
    for row in rows:
        combos: list[tuple[str, ...]] = [()]
        for dim in by:
            combos = [(*c, v) for c in combos for v in _values(row, dim, tag_key)]
        for combo in combos:
            line = lines.get(combo)
            if line is None:
                line = lines[combo] = UsageLine(dict(zip(by, combo, strict=True)))
            line.runs.add(row.run_id)
            line.model_calls += row.model != "(journal removed)"
            line.input_tokens += row.input_tokens
            line.output_tokens += row.output_tokens
            line.cost += row.cost
    return sorted(lines.values(), key=lambda l: (-l.cost, tuple(l.key.values())))  # noqa: E741


async def usage(
    store: Store,
    by: tuple[str, ...],
    *,
    since: float,
    until: float | None = None,
    tag_key: str | None = None,
) -> list[UsageLine]:
    return aggregate(await store.usage_rows(since, until), by, tag_key=tag_key)


COLUMNS = ("runs", "model_calls", "input_tokens", "output_tokens", "cost")


def to_csv(lines: list[UsageLine], by: tuple[str, ...]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[*by, *COLUMNS], lineterminator="\n")
    writer.writeheader()
    for line in lines:
        writer.writerow(line.as_dict())
    return out.getvalue()


def to_table(lines: list[UsageLine], by: tuple[str, ...]) -> str:
    header = [d.upper() for d in by] + ["RUNS", "CALLS", "IN TOKENS", "OUT TOKENS", "COST"]
    rows = [
        [*line.key.values(), str(len(line.runs)), str(line.model_calls),
         str(line.input_tokens), str(line.output_tokens), f"${line.cost:.6f}"]
        for line in lines
    ]  # fmt: skip
    total = UsageLine({})
    for line in lines:
        total.runs |= line.runs
        total.model_calls += line.model_calls
        total.input_tokens += line.input_tokens
        total.output_tokens += line.output_tokens
        total.cost += line.cost
    if "tag" not in by:
        rows.append(
            ["TOTAL", *[""] * (len(by) - 1), str(len(total.runs)), str(total.model_calls),
             str(total.input_tokens), str(total.output_tokens), f"${total.cost:.6f}"]
        )  # fmt: skip
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) if i < len(by) else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip()
        for r in [header, *rows]
    )  # fmt: skip
