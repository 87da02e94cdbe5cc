"""Schedules: ten runtimes (each its own database connection, as ten workers are) polling
one schedule on one SQLite file or one PostgreSQL database start exactly one run per
tick; missed ticks are skipped or run once; a paused schedule passes its ticks.

Time is given to `schedule.poll` (the clock is the caller's), so nothing here waits for a
real minute to pass or depends on timing."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bosun.engine.runtime import Runtime
from bosun.triggers import schedule
from bosun.triggers.runner import Triggers

HERE = Path(__file__).parent
START = datetime(2026, 3, 29, 0, 58, 10, tzinfo=ZoneInfo("Europe/Lisbon")).timestamp()  # DST day


async def runs_of(rt: Runtime, name: str) -> list:
    return await rt.store.list_runs(tag=("bosun.trigger", name), limit=1000)


async def test_ten_workers_and_one_schedule_start_one_run_per_tick(db_url):
    runtimes = [Runtime(db_url, owner=f"worker-{i}") for i in range(10)]
    for rt in runtimes:
        await rt.open()
    try:
        sets = [Triggers.load(rt, str(HERE / "sched.yaml")) for rt in runtimes]
        trigger = [s.all["every-minute"] for s in sets]
        # Every worker polls every 5 simulated seconds for 6 minutes, all at once.
        fired = []
        for step in range(0, 6 * 60, 5):
            now = START + step
            got = await asyncio.gather(
                *(schedule.poll(rt, t, now) for rt, t in zip(runtimes, trigger, strict=True))
            )
            fired += [r for r in got if r]
        runs = await runs_of(runtimes[0], "every-minute")
        # 00:59, 01:00 ... 01:03 Lisbon time (the clocks go forward at 01:00 that day).
        assert len(runs) == 6
        assert len({r.input for r in runs}) == 6
        assert sorted(fired) == sorted(r.id for r in runs)  # each counted once, by one worker
        row = (await runtimes[0].store.triggers("every-minute"))[0]
        assert row.started == 6
        inputs = sorted(r.input for r in runs)
        assert inputs[0].startswith("tick 2026-03-29T00:59:00+00:00")
        assert inputs[1].startswith("tick 2026-03-29T02:00:00+01:00")
    finally:
        for rt in runtimes:
            await rt.close()


async def test_missed_ticks_are_skipped_or_run_once(sqlite_path):
    async with Runtime(sqlite_path) as rt:
        triggers = Triggers.load(rt, str(HERE / "sched.yaml"))
        skip, catch_up = triggers.all["every-minute"], triggers.all["hourly-catch-up"]
        for t in (skip, catch_up):
            await schedule.poll(rt, t, START)  # first seen: starts from now, nothing fired
        # Every process was down for five hours.
        later = START + 5 * 3600 + 45  # 45 s after a minute's tick: over the 30 s grace
        assert await schedule.poll(rt, skip, later) is None
        assert await schedule.poll(rt, catch_up, later) is not None
        assert await schedule.poll(rt, catch_up, later + 1) is None  # once, not five times
        assert len(await runs_of(rt, "every-minute")) == 0
        assert len(await runs_of(rt, "hourly-catch-up")) == 1
        # On time again: the next minute's tick runs.
        assert await schedule.poll(rt, skip, later + 20) is not None


async def test_a_paused_schedule_passes_its_ticks_and_resumes_at_the_next(sqlite_path):
    async with Runtime(sqlite_path) as rt:
        t = Triggers.load(rt, str(HERE / "sched.yaml")).all["every-minute"]
        await schedule.poll(rt, t, START)
        assert await rt.store.set_trigger_paused("every-minute", True)
        assert await schedule.poll(rt, t, START + 60) is None
        assert await rt.store.set_trigger_paused("every-minute", False)
        assert await schedule.poll(rt, t, START + 61) is None  # that tick was passed
        assert await schedule.poll(rt, t, START + 120) is not None


@pytest.mark.parametrize("bad", ["61 * * * *", "every minute"])
def test_a_bad_cron_names_the_file_the_trigger_and_the_field(tmp_path, bad):
    from bosun.errors import SpecError
    from bosun.triggers.spec import load_triggers

    path = tmp_path / "t.yaml"
    path.write_text(
        f"triggers:\n  - name: nightly\n    target: x.yaml\n    schedule: {{cron: '{bad}'}}\n"
    )
    with pytest.raises(SpecError) as err:
        load_triggers(str(path))
    assert str(path) in str(err.value)
    assert "trigger nightly" in str(err.value)
    assert "schedule.cron" in str(err.value)
