"""`bosun usage`, `bosun trace order=1234`, `bosun show` as a story, `bosun worker --metrics-port`."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from observe_helpers import support_agent

from bosun import Runtime
from bosun.cli import main

HELPERS = Path(__file__).parent


async def seed(db: str) -> list[str]:
    async with Runtime(db) as rt:
        a = await rt.run(
            support_agent(), "Refund order 1234", user="ann", tenant="acme", tags={"order": "1234"}
        )
        b = await rt.run(
            support_agent("billing", model="gpt-4o"),
            "Check 1234",
            user="bob",
            tags={"order": "1234", "ticket": "9"},
        )
        c = await rt.run(
            support_agent(), "Other order", user="ann", tenant="acme", tags={"order": "77"}
        )
    return [a.run_id, b.run_id, c.run_id]  # fmt: skip


def run_cli(capsys, *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().out


async def test_usage_by_agent_and_model_as_json_csv_and_table(sqlite_path, capsys):
    await seed(sqlite_path)
    code, out = await asyncio.to_thread(
        run_cli, capsys, "usage", "--db", sqlite_path, "--by", "agent,model", "--json"
    )
    assert code == 0
    rows = {(r["agent"], r["model"]): r for r in json.loads(out)}
    assert set(rows) == {("support", "gpt-4o-mini"), ("billing", "gpt-4o")}
    assert rows["support", "gpt-4o-mini"]["runs"] == 2
    assert rows["support", "gpt-4o-mini"]["model_calls"] == 6
    assert rows["support", "gpt-4o-mini"]["input_tokens"] == 900

    code, out = await asyncio.to_thread(
        run_cli, capsys, "usage", "--db", sqlite_path, "--by", "tag", "--since", "1d",
        "--format", "csv",
    )  # fmt: skip
    table = list(csv.DictReader(io.StringIO(out)))
    assert {r["tag"]: int(r["runs"]) for r in table} == {
        "order=1234": 2,
        "order=77": 1,
        "ticket=9": 1,
    }

    code, out = await asyncio.to_thread(
        run_cli, capsys, "usage", "--db", sqlite_path, "--by", "user"
    )
    assert out.splitlines()[0].split() == [
        "USER",
        "RUNS",
        "CALLS",
        "IN",
        "TOKENS",
        "OUT",
        "TOKENS",
        "COST",
    ]
    assert out.splitlines()[-1].startswith("TOTAL")


async def test_trace_lists_every_run_and_action_that_touched_a_business_object(sqlite_path, capsys):
    a, b, _ = await seed(sqlite_path)
    code, out = await asyncio.to_thread(run_cli, capsys, "trace", "order=1234", "--db", sqlite_path)
    assert code == 0
    assert "order=1234: 2 run(s)" in out and a in out and b in out
    assert "refund(" in out and "[write]" in out and "policy allow by rule" in out
    assert "4111" not in out  # sensitive arguments stay redacted
    code, out = await asyncio.to_thread(
        run_cli, capsys, "trace", "order=1234", "--db", sqlite_path, "--json"
    )
    runs = json.loads(out)
    assert [r["run_id"] for r in runs] == [b, a]
    assert [x["tool"] for x in runs[1]["actions"]] == ["lookup", "refund"]
    assert runs[1]["actions"][1]["outcome"] == "done"


async def test_show_reads_as_a_story_goal_objects_timeline_actions(sqlite_path, capsys):
    a, _, _ = await seed(sqlite_path)
    code, out = await asyncio.to_thread(run_cli, capsys, "show", a, "--db", sqlite_path)
    assert code == 0
    assert "goal     Refund order 1234" in out
    assert "objects  order=1234" in out
    assert "actions (what it did, to which system, and why)" in out
    assert "2. refund(" in out and "got: refunded 5.0 on 1234" in out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
async def test_worker_serves_metrics_and_logs_json(sqlite_path):
    async with Runtime(sqlite_path) as rt:
        await rt.submit(support_agent(), "queued for the worker")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bosun", "worker", "--db", sqlite_path, "--metrics-port", str(port),
         "--metrics-host", "127.0.0.1", "--log-json", "--watchdog", "--poll-interval", "0.1"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(HELPERS), os.environ.get("PYTHONPATH")]))},  # the tools are imported by reference; the bosun under test
    )  # fmt: skip
    try:
        text = ""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
                if 'bosun_runs_finished_total{agent="support",status="succeeded"} 1.0' in text:
                    break
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
        assert 'bosun_runs_finished_total{agent="support",status="succeeded"} 1.0' in text
        assert "bosun_queue_depth 0.0" in text
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    lines = [json.loads(line) for line in err.decode().splitlines() if line.startswith("{")]
    events = [line for line in lines if line.get("logger") == "bosun.events"]
    assert events and all(e["run_id"] and len(e["trace_id"]) == 32 for e in events)
    assert any(e.get("event") == "model_responded" and e.get("step") == 1 for e in events)
