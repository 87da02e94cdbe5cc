"""A `bosun worker` SIGKILLed while a run waits on a slow remote A2A task: another worker
(a fresh process that never loads the agent file) takes over watching the same remote
task once the dead worker's lease expires, and the run finishes with its answer. The
reference server counts what reached it: the task was sent once."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from a2a_client_servers import TOKEN, RefServer

from bosun import Runtime
from bosun.journal.events import ToolFinished, ToolStarted, WaitRequested

pytestmark = pytest.mark.slow
DEADLINE = 90.0  # a bound on waiting, never part of an assertion


def _env() -> dict[str, str]:
    return {**os.environ, "REF_A2A_TOKEN": TOKEN}


def _bosun(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "bosun", *args],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        env=_env(),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _worker(db: str, log: Path, *, exit_when_idle: bool = False) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "bosun", "worker", "--db", db, "--lease-seconds", "1"]
    args += ["--poll-interval", "0.1"] + (["--exit-when-idle"] if exit_when_idle else [])
    with open(log, "ab") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=_env())


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


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_a_worker_killed_while_its_run_waits_on_a_remote_task_never_sends_it_twice(
    store, request, tmp_path
):
    server = RefServer(tmp_path / "remote", token=TOKEN, slow=4.0).start()
    db = str(tmp_path / "bosun.db") if store == "sqlite" else request.getfixturevalue("pg_url")
    log = tmp_path / "workers.log"
    agent = tmp_path / "caller.yaml"
    agent.write_text(
        f"""
name: caller
model:
  provider: scripted
  turns:
    - tool_calls: [{{name: slow, arguments: {{message: through a crash}}}}]
    - content: done
tools:
  - a2a: {{card: "{server.url}", token_env: REF_A2A_TOKEN, poll_interval: 0.1}}
    allow: [slow]
"""
    )
    try:
        out = _bosun("submit", str(agent), "--input", "go", "--db", db, "--json")
        run_id = json.loads(out)["run_id"]
        first = _worker(db, log)
        async with Runtime(db) as rt:

            async def watched() -> bool:  # parked, and the first worker's watcher holds it
                run = await rt.get_run(run_id)
                return run.status == "waiting" and (run.lease_owner or "").endswith("/a2a")

            await _wait("the run to park on its remote task", watched, log)
            os.kill(first.pid, 9)
            assert first.wait(timeout=DEADLINE) == -9
            assert server.counts()["slow"] == 1
            second = _worker(db, log, exit_when_idle=True)
            assert second.wait(timeout=DEADLINE) == 0, log.read_text()
            result = await rt.result(run_id)
            events = await rt.events(run_id)
    finally:
        server.stop()
    assert result.status == "succeeded", log.read_text()
    assert [e.result["answer"] for _, e in events if isinstance(e, ToolFinished)] == [
        "slow done: through a crash"
    ]
    assert len([e for _, e in events if isinstance(e, ToolStarted)]) == 1
    assert len([e for _, e in events if isinstance(e, WaitRequested)]) == 1
    assert server.counts()["slow"] == 1  # the remote task was sent once, never again
