"""A `bosun worker` SIGKILLed while an MCP call is in flight: another worker, which never
loads the agent file (it rebuilds the pinned version and opens the server itself), sends
an idempotent call again and parks a run whose non-idempotent call may have happened."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mcp_servers import fault_entry, write_agent

from bosun import Runtime
from bosun.journal.events import ToolFinished, ToolStarted

pytestmark = pytest.mark.slow
DEADLINE = 90.0  # a bound on waiting, never part of an assertion


def _bosun(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "bosun", *args], capture_output=True, text=True, timeout=DEADLINE
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _worker(db: str, log: Path, *, exit_when_idle: bool = False) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "bosun", "worker", "--db", db, "--lease-seconds", "1"]
    args += ["--poll-interval", "0.1"] + (["--exit-when-idle"] if exit_when_idle else [])
    with open(log, "ab") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)


async def _wait(what: str, check, log: Path) -> None:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}:\n{log.read_text()}")


@pytest.mark.parametrize("idempotent", [True, False], ids=["idempotent", "not-idempotent"])
async def test_an_mcp_call_cut_by_a_killed_worker_follows_the_durability_rule(
    tmp_path, fault_dir, idempotent
):
    db, log = str(tmp_path / "bosun.db"), tmp_path / "workers.log"
    extra = "trusted: true" + ("\nidempotent: [once]" if idempotent else "")
    body = f"""
name: crashy
tools:
{fault_entry(extra)}
model:
  provider: scripted
  turns:
    - tool_calls: [{{name: once, arguments: {{label: a}}}}]
    - content: done
"""
    agent_file = write_agent(tmp_path, body)
    run_id = json.loads(_bosun("submit", agent_file, "--input", "go", "--db", db, "--json"))[
        "run_id"
    ]
    marker = fault_dir / "a.pid"
    first = _worker(db, log)
    try:
        await _wait("the MCP call to begin at the server", lambda: marker.exists(), log)
        os.kill(first.pid, signal.SIGKILL)  # the worker, mid-call; not the server
        assert first.wait(timeout=DEADLINE) == -9
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(marker.read_text()), signal.SIGKILL)  # the orphaned server, if alive
        async with Runtime(db) as rt:

            async def lease_expired() -> bool:
                run = await rt.get_run(run_id)
                return run.lease_expires_at is None or run.lease_expires_at < time.time()

            await _wait("the dead worker's lease to expire", lease_expired, log)
            second = _worker(db, log, exit_when_idle=True)
            assert second.wait(timeout=DEADLINE) == 0, log.read_text()
            run = await rt.get_run(run_id)
            events = [e for _, e in await rt.events(run_id)]
    finally:
        if first.poll() is None:
            first.kill()
    started = [e for e in events if isinstance(e, ToolStarted)]
    if idempotent:
        assert run.status == "succeeded", run.reason
        [finished] = [e for e in events if isinstance(e, ToolFinished)]
        assert finished.result == {"result": "done a"}  # sent again, by the second worker
        assert len({e.idempotency_key for e in started}) == 1  # one call, one key
    else:
        assert run.status == "needs_attention"
        assert "call_0_0 (once)" in (run.reason or "") and "not idempotent" in run.reason
        assert not [e for e in events if isinstance(e, ToolFinished)]
        assert len(started) == 1  # never sent again
