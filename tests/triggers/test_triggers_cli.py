"""`bosun triggers list|pause|resume`: the shared rows every process reads."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from bosun.cli import main
from bosun.engine.runtime import Runtime
from bosun.triggers import schedule
from bosun.triggers.runner import Triggers

HERE = Path(__file__).parent


def test_list_pause_and_resume_from_the_cli(sqlite_path, capsys):
    async def register() -> None:
        async with Runtime(sqlite_path) as rt:
            t = Triggers.load(rt, str(HERE / "sched.yaml")).all["every-minute"]
            await schedule.poll(rt, t, 1_800_000_000.0)

    asyncio.run(register())
    file = str(HERE / "sched.yaml")
    assert main(["triggers", "list", "--db", sqlite_path, "--triggers", file]) == 0
    table = capsys.readouterr().out
    assert "every-minute" in table and "schedule" in table and "active" in table
    assert main(["triggers", "pause", "every-minute", "--db", sqlite_path]) == 0
    assert main(["triggers", "list", "--db", sqlite_path, "--json"]) == 0
    out = capsys.readouterr().out
    shown = json.loads(out[out.index("[") :])
    row = next(t for t in shown if t["name"] == "every-minute")
    assert row["paused"] is True
    assert row["last_tick"] == 1_800_000_000.0 - 1_800_000_000.0 % 60
    assert set(row["counters"]) == {
        "received",
        "started",
        "deduplicated",
        "rejected",
        "dead_lettered",
    }
    assert main(["triggers", "resume", "every-minute", "--db", sqlite_path]) == 0
    assert main(["triggers", "pause", "no-such-trigger", "--db", sqlite_path]) == 2
    assert "no trigger 'no-such-trigger'" in capsys.readouterr().err
