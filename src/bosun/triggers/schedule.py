"""Cron schedules: exactly one run per tick, however many processes serve the schedule.

Every process polls; for the latest tick due it creates the run keyed by the tick's time
(`trigger:<name>:<tick ISO time>`, so all of them get the one run), then moves the
schedule's `last_tick` forward in the shared store with a compare-and-set: the one process
that moves it counts the run `started`. A process killed between the two leaves the tick
for the next poll (of any process), which finds the same run.

Missed ticks (no process ran, or the schedule was paused) are never run one by one: with
`missed: skip` a tick more than `grace_seconds` late is skipped; with `missed: run_once`
the latest missed tick runs once. A paused schedule moves past its ticks without runs.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

from bosun.engine.runtime import Runtime
from bosun.triggers.fire import Trigger, count

log = logging.getLogger("bosun.triggers")


def latest_tick(cron: str, zone: str, now: float) -> float:
    """The latest tick at or before `now` (epoch seconds), in the schedule's time zone
    (croniter's `get_prev` is strictly before its start, hence the microsecond)."""
    here = datetime.fromtimestamp(now, ZoneInfo(zone)) + timedelta(microseconds=1)
    return croniter(cron, here).get_prev(datetime).timestamp()


def tick_name(tick: float, zone: str) -> str:
    return datetime.fromtimestamp(tick, ZoneInfo(zone)).isoformat()


async def poll(rt: Runtime, trigger: Trigger, now: float) -> str | None:
    """Fire the schedule's due tick, if any is; the run's id when this call fired one."""
    schedule = trigger.spec.schedule
    assert schedule is not None
    rows = await rt.store.triggers(trigger.name)
    row = rows[0] if rows else None
    tick = latest_tick(schedule.cron, schedule.timezone, now)
    if row is None:
        await rt.store.ensure_trigger(trigger.name, trigger.spec.tenant)
    if row is None or row.last_tick is None:
        # A new schedule starts from now: ticks before it existed are not missed ones.
        await rt.store.advance_tick(trigger.name, tick)
        return None
    if row.last_tick >= tick:
        return None
    late = now - tick
    skip = row.paused or (schedule.missed == "skip" and late > schedule.grace_seconds)
    if skip:
        if await rt.store.advance_tick(trigger.name, tick):
            log.info(
                "schedule %s: tick %s skipped", trigger.name, tick_name(tick, schedule.timezone)
            )
        return None
    name = tick_name(tick, schedule.timezone)
    payload = {"tick": name, "schedule": schedule.cron, "timezone": schedule.timezone}
    run_id = await trigger.target.submit(
        rt,
        payload,
        key=trigger.key(name),
        tenant=trigger.spec.tenant,
        tags=trigger.tags(),
    )
    if await rt.store.advance_tick(trigger.name, tick):
        await count(rt, trigger, "received")
        await count(rt, trigger, "started")
        return run_id
    return None
