"""Governance holds across worker processes sharing one database (SQLite and PostgreSQL):
kill switches, rate limits, and approvals parked across a worker restart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from bosun import Runtime, load_agent

pytestmark = pytest.mark.slow

TOOLS = '''
import os, time
from pathlib import Path
from bosun import tool

DIR = Path(os.environ["EFFECTS_DIR"])

@tool(effect="read", idempotent=True)
def hold(n: int) -> int:
    """Blocks until the test writes the `go` file."""
    (DIR / f"holding-{n}-{os.getpid()}").touch()
    deadline = time.monotonic() + 120
    while not (DIR / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return os.getpid()

@tool(effect="irreversible")
def effect(n: int) -> str:
    """An irreversible side effect, recorded in a file."""
    with open(DIR / "effects.log", "a") as f:
        f.write(f"{n} {os.getpid()}\\n")
    return "done"
'''


def agent_file(tmp_path: Path, name: str, turns: list[dict], extra: str = "") -> str:
    (tmp_path / "tools.py").write_text(TOOLS)
    body = textwrap.dedent(
        f"""
        name: {name}
        tools: [tools.py:hold, tools.py:effect]
        limits: {{max_repeats: null}}
        model:
          provider: scripted
          turns: {json.dumps(turns)}
        """
    )
    path = tmp_path / f"{name}.yaml"
    path.write_text(body + textwrap.dedent(extra))
    return str(path)


def call(name: str, n: int) -> dict:
    return {"tool_calls": [{"name": name, "arguments": {"n": n}}]}


def wait_until(predicate, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Workers:
    def __init__(self, db: str, env: dict[str, str]):
        self.db, self.env, self.procs = db, env, []

    def start(self, *extra: str) -> subprocess.Popen:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bosun",
                "worker",
                "--db",
                self.db,
                "--poll-interval",
                "0.05",
                "--concurrency",
                "1",
                "--lease-seconds",
                "5",
                *extra,
            ],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture
def effects_dir(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "effects"
    d.mkdir()
    monkeypatch.setenv("EFFECTS_DIR", str(d))
    return d


@pytest.fixture
def workers(db_url, effects_dir):
    env = {**os.environ, "EFFECTS_DIR": str(effects_dir)}
    w = Workers(db_url, env)
    yield w
    w.stop()


async def submit(db: str, path: str, n: int, **options) -> list[str]:
    agent = load_agent(path)
    async with Runtime(db) as rt:
        return [await rt.submit(agent, f"run {i}", **options) for i in range(n)]


async def statuses(db: str, ids: list[str]) -> dict[str, str]:
    async with Runtime(db) as rt:
        return {i: (await rt.get_run(i)).status for i in ids}


def run(coro):
    import asyncio

    return asyncio.run(coro)


def test_kill_switch_set_in_one_process_halts_runs_in_two_others(
    tmp_path, db_url, effects_dir, workers
):
    path = agent_file(tmp_path, "killable", [call("hold", 1), call("effect", 2), {"content": "x"}])
    ids = run(submit(db_url, path, 2))
    workers.start()
    workers.start()
    wait_until(lambda: len(list(effects_dir.glob("holding-*"))) == 2, "both runs in the tool")
    pids = {p.name.split("-")[2] for p in effects_dir.glob("holding-*")}
    assert len(pids) == 2  # two different worker processes hold one run each

    async def kill() -> None:
        async with Runtime(db_url) as rt:
            await rt.kill("agent:killable", reason="incident 7", by="ops")

    run(kill())
    (effects_dir / "go").touch()
    wait_until(lambda: set(run(statuses(db_url, ids)).values()) == {"killed"}, "both runs killed")
    assert not (effects_dir / "effects.log").exists()  # no effect after the switch


def test_rate_limit_is_shared_by_two_worker_processes(tmp_path, db_url, effects_dir, workers):
    path = agent_file(
        tmp_path,
        "limited",
        [call("effect", i) for i in range(3)] + [{"content": "x"}],
        extra="""
        rate_limits:
          - {tools: [effect], per: tenant, limit: 3, window_seconds: 3600}
        """,
    )
    ids = run(submit(db_url, path, 2))
    workers.start()
    workers.start()
    wait_until(lambda: set(run(statuses(db_url, ids)).values()) == {"succeeded"}, "both runs done")
    effects = (effects_dir / "effects.log").read_text().splitlines()
    assert len(effects) == 3  # 6 attempts, 3 allowed in the window, across both processes

    async def denied() -> int:
        async with Runtime(db_url) as rt:
            total = 0
            for i in ids:
                total += sum(
                    1
                    for _, e in await rt.events(i)
                    if e.kind == "tool_failed" and e.error_type == "denied"
                )
            return total

    assert run(denied()) == 3


def test_approval_parks_across_a_worker_restart(tmp_path, db_url, effects_dir, workers):
    path = agent_file(
        tmp_path,
        "approved",
        [call("effect", 1), {"content": "x"}],
        extra="""
        policy:
          name: p
          rules:
            - {name: effects-need-approval, tools: [effect], effect: require_approval}
        """,
    )
    (run_id,) = run(submit(db_url, path, 1))
    first = workers.start()
    wait_until(lambda: run(statuses(db_url, [run_id]))[run_id] == "waiting_approval", "parking")
    first.kill()  # the worker dies while the run waits: nothing was held in it
    first.wait()

    async def approve() -> None:
        async with Runtime(db_url) as rt:
            (pending,) = await rt.approvals()
            await rt.approve(pending.id, by="sam")

    run(approve())
    workers.start("--exit-when-idle").wait(timeout=120)
    assert run(statuses(db_url, [run_id]))[run_id] == "succeeded"
    assert len((effects_dir / "effects.log").read_text().splitlines()) == 1
