"""Usage and cost aggregates for the API and the Costs page, from the store's usage rows
(one per model answer, see `Store.usage_rows`), always restricted to the caller's tenant."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING

from bosun.server import schemas
from bosun.server.keys import Principal
from bosun.server.state import ServerState

if TYPE_CHECKING:
    from bosun.store.observing import UsageRow

GROUPS = ("agent", "user", "tenant", "tag", "day")
DAY = 86400.0


def day_of(ts: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


def day_range(since: float, until: float) -> list[str]:
    """Every UTC day from `since` to `until`, as YYYY-MM-DD (for charts with empty days)."""
    days = [day_of(since)]
    last = day_of(until)
    ts = since
    while days[-1] < last:
        ts += DAY
        days.append(day_of(min(ts, until)))
    return days


def keys_of(row: UsageRow, group_by: str) -> list[str]:
    if group_by == "agent":
        return [row.agent]
    if group_by == "user":
        return [row.user or "(none)"]
    if group_by == "tenant":
        return [row.tenant]
    if group_by == "tag":
        return [f"{k}={v}" for k, v in sorted(row.tags.items())] or ["(untagged)"]
    return [day_of(row.ts)]


def aggregate(rows: Iterable[UsageRow], group_by: str) -> tuple[schemas.UsageGroup, list]:
    sums: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0, 0.0])
    runs: dict[str, set[str]] = defaultdict(set)
    total = [0, 0, 0, 0.0]
    total_runs: set[str] = set()
    for row in rows:
        values = (1, row.input_tokens, row.output_tokens, row.cost)
        for i, v in enumerate(values):
            total[i] += v
        total_runs.add(row.run_id)
        for key in keys_of(row, group_by):
            acc = sums[key]
            for i, v in enumerate(values):
                acc[i] += v
            runs[key].add(row.run_id)

    def group(key: str, acc: list[float], n: int) -> schemas.UsageGroup:
        return schemas.UsageGroup(
            key=key,
            runs=n,
            model_calls=int(acc[0]),
            input_tokens=int(acc[1]),
            output_tokens=int(acc[2]),
            cost=round(acc[3], 8),
        )

    order = sorted(sums) if group_by == "day" else sorted(sums, key=lambda k: -sums[k][3])
    return group("total", total, len(total_runs)), [group(k, sums[k], len(runs[k])) for k in order]


async def usage(
    state: ServerState,
    p: Principal,
    group_by: str = "agent",
    since: float | None = None,
    until: float | None = None,
) -> schemas.UsageOut:
    until = until if until is not None else time.time()
    since = since if since is not None else until - 30 * DAY
    rows = [r for r in await state.runtime.store.usage_rows(since, until) if r.tenant == p.tenant]
    total, groups = aggregate(rows, group_by)
    return schemas.UsageOut(
        group_by=group_by, since=since, until=until, tenant=p.tenant, total=total, groups=groups
    )
