"""Usage and cost for the API and the Costs page: the one aggregator of `bosun usage`
(`bosun.observe.usage`) in the API's shape, always restricted to the caller's tenant."""

from __future__ import annotations

import time
from collections.abc import Sequence

from bosun.observe.usage import UsageLine
from bosun.observe.usage import aggregate as sum_usage
from bosun.server import schemas
from bosun.server.keys import Principal
from bosun.server.state import ServerState
from bosun.store.observing import UsageRow

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


def group_of(line: UsageLine, key: str) -> schemas.UsageGroup:
    d = line.as_dict()
    return schemas.UsageGroup(
        key=key,
        runs=d["runs"],
        model_calls=d["model_calls"],
        input_tokens=d["input_tokens"],
        output_tokens=d["output_tokens"],
        cost=d["cost"],
    )


def aggregate(
    rows: Sequence[UsageRow], group_by: str
) -> tuple[schemas.UsageGroup, list[schemas.UsageGroup]]:
    """The total and one group per key, summed by the one usage aggregator (the one
    `bosun usage` prints: `bosun.observe.usage.aggregate`), so the API, the Costs page and
    the CLI agree, also about runs whose journal was garbage-collected."""
    lines = sum_usage(rows, (group_by,))
    total = sum_usage(rows, ())  # one line (none without rows): the grand total
    groups = [group_of(line, line.key[group_by]) for line in lines]
    if group_by == "day":  # a chart's order
        groups.sort(key=lambda g: g.key)
    return group_of(total[0] if total else UsageLine({}), "total"), groups


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
