"""Fan-outs and deep approvals survive SIGKILLed workers (real `bosun worker` subprocesses,
both stores).

- A worker killed mid fan-out: three children have finished (their answers are in the
  parent's journal), two are inside a slow call. The next worker resumes the two, never
  re-runs the three, and the parent joins all five.
- An approval three levels deep (root > billing > biller): the inbox shows its path; the
  worker is killed; approving it and starting a new worker resumes exactly that child,
  then its ancestors, one after the other; the charge runs once.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bosun import Agent, Limits, Runtime
from bosun.journal.events import (
    RunFinished,
    RunResumed,
    ToolFinished,
    ToolStarted,
    WaitRequested,
)

pytestmark = pytest.mark.slow

HERE = Path(__file__).parent
TOOLS = HERE / "fanout_tools.py"
DEADLINE = 60.0  # a bound on waiting, never part of an assertion


def scripted(*turns: dict) -> dict:
    return {"provider": "scripted", "turns": list(turns)}


def calls(*pairs: tuple[str, dict]) -> dict:
    return {"tool_calls": [{"name": n, "arguments": a} for n, a in pairs]}


def of(events, kind, **match):
    return [
        e
        for _, e in events
        if isinstance(e, kind) and all(getattr(e, k) == v for k, v in match.items())
    ]


def effects(folder: Path, tool: str) -> list[dict[str, Any]]:
    path = folder / "effects.jsonl"
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [e for e in lines if e["tool"] == tool]


def env_for(folder: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FANOUT_")}
    return env | {"FANOUT_EFFECTS_DIR": str(folder)} | extra


def worker(db: str, env: dict[str, str], log: Path, *, idle_exit: bool = False):
    args = [sys.executable, "-m", "bosun", "worker", "--db", db, "--lease-seconds", "1"]
    args += ["--poll-interval", "0.05", "--concurrency", "8"]
    if idle_exit:
        args.append("--exit-when-idle")
    with open(log, "ab") as out:
        return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)


def cli(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "bosun", *args], env=env, capture_output=True, text=True,
        timeout=DEADLINE,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


async def wait_until(what: str, check: Callable[[], Any], log: Path) -> None:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}:\n{log.read_text()}")


def finish(proc: subprocess.Popen[bytes], log: Path) -> None:
    try:
        code = proc.wait(timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"worker still running:\n{log.read_text()}") from None
    assert code == 0, log.read_text()


def sigkill(proc: subprocess.Popen[bytes]) -> None:
    proc.kill()
    assert proc.wait(timeout=DEADLINE) == -9


async def leases_expired(rt: Runtime, run_ids: list[str], log: Path) -> None:
    async def expired() -> bool:
        runs = [await rt.get_run(r) for r in run_ids]
        return all(r.lease_expires_at is None or r.lease_expires_at < time.time() for r in runs)

    await wait_until("the killed worker's leases to expire", expired, log)


@pytest.fixture
def procs():
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def child(name: str, tool: str) -> Agent:
    return Agent(
        name=name,
        model=scripted(calls((tool, {"item": name})), {"content": f"{name} done"}),
        tools=[f"{TOOLS}:{tool}"],
        limits=Limits(max_steps=4),
    )


async def test_a_worker_killed_mid_fan_out_reruns_nothing_finished(tmp_path, db_url, procs):
    folder, log = tmp_path / "effects", tmp_path / "workers.log"
    fast = [child(f"f{i}", "note") for i in range(3)]
    slow = [child(f"h{i}", "hold") for i in range(2)]
    names = [a.name for a in fast + slow]
    parent = Agent(
        name="lead",
        model=scripted(calls(*[(n, {"input": n}) for n in names]), {"content": "joined"}),
        tools=fast + slow,
        limits=Limits(max_steps=30),
    )
    async with Runtime(db_url) as rt:
        parent_id = await rt.submit(parent, "fan out")
        procs.append(worker(db_url, env_for(folder, FANOUT_HOLD="1"), log))

        async def three_joined_two_holding() -> bool:
            finished = of(await rt.events(parent_id), ToolFinished)
            return len(finished) == 3 and len(effects(folder, "hold")) == 2

        await wait_until("3 answers joined and 2 children holding", three_joined_two_holding, log)
        sigkill(procs[0])
        kids = {k.agent: k for k in await rt.store.list_runs(parent_id=parent_id)}
        assert {n: kids[n].status for n in ("f0", "f1", "f2")} == dict.fromkeys(
            ("f0", "f1", "f2"), "succeeded"
        )
        await leases_expired(rt, [kids["h0"].id, kids["h1"].id, parent_id], log)
        procs.append(worker(db_url, env_for(folder), log, idle_exit=True))
        finish(procs[1], log)

        result = await rt.result(parent_id)
        events = await rt.events(parent_id)
        after = {k.agent: k for k in await rt.store.list_runs(parent_id=parent_id)}
        journals = {n: await rt.events(k.id) for n, k in after.items()}

    assert result.status == "succeeded" and result.output == "joined"
    assert sorted(after) == sorted(names) and all(k.status == "succeeded" for k in after.values())
    assert {n: after[n].id for n in names} == {n: kids[n].id for n in names}  # no second child
    # Finished children were not re-run: one note each, no resume in their journals.
    assert sorted(e["item"] for e in effects(folder, "note")) == ["f0", "f1", "f2"]
    for n in ("f0", "f1", "f2"):
        assert not of(journals[n], RunResumed) and len(of(journals[n], ToolStarted)) == 1
    # The unfinished ones resumed: their (idempotent) call began again, once more.
    for n in ("h0", "h1"):
        assert [e["attempt"] for e in effects(folder, "hold") if e["item"] == n] == [1, 2]
        assert of(journals[n], RunResumed)
    # The parent: one wait per call, one answer per call, the fast ones first.
    assert len(of(events, WaitRequested)) == 5
    answered = [e.tool for e in of(events, ToolFinished)]
    assert sorted(answered[:3]) == ["f0", "f1", "f2"] and sorted(answered[3:]) == ["h0", "h1"]


async def test_an_approval_three_levels_deep_outlives_a_worker_restart(tmp_path, db_url, procs):
    folder, log = tmp_path / "effects", tmp_path / "workers.log"
    policy = {
        "name": "charges-need-finance",
        "rules": [{"name": "finance", "tools": ["charge"], "effect": "require_approval"}],
    }
    biller = Agent(
        name="biller",
        model=scripted(calls(("charge", {"amount": 20.0})), {"content": "charged 20"}),
        tools=[f"{TOOLS}:charge"],
        policy=policy,
        limits=Limits(max_steps=4),
    )
    billing = Agent(
        name="billing",
        model=scripted(calls(("biller", {"input": "charge 20"})), {"content": "billing: 20"}),
        tools=[biller],
        limits=Limits(max_steps=8),
    )
    root = Agent(
        name="lead",
        model=scripted(calls(("billing", {"input": "bill it"})), {"content": "Billed."}),
        tools=[billing],
    )
    env = env_for(folder)
    async with Runtime(db_url) as rt:
        root_id = await rt.submit(root, "bill the customer")
        procs.append(worker(db_url, env, log))

        async def parked() -> bool:
            tree = await rt.store.list_runs(root_id=root_id)
            statuses = sorted(r.status for r in tree)
            return statuses == ["waiting", "waiting", "waiting_approval"]

        await wait_until("the leaf's approval, its ancestors waiting", parked, log)
        sigkill(procs[0])
        [shown] = json.loads(cli("approvals", "--db", db_url, "--json", env=env))
        text = cli("approvals", "--db", db_url, env=env)
        tree = {r.agent: r for r in await rt.store.list_runs(root_id=root_id)}
        await leases_expired(rt, [r.id for r in tree.values()], log)
        cli("approve", shown["approval_id"], "--by", "finance@example.com", "--db", db_url, env=env)
        procs.append(worker(db_url, env, log, idle_exit=True))
        finish(procs[1], log)

        result = await rt.result(root_id)
        ends = {
            n: of(await rt.events(r.id), RunFinished)[0].ts for n, r in tree.items()
        }  # fmt: skip
        after = {r.agent: r.status for r in await rt.store.list_runs(root_id=root_id)}

    assert [(s["agent"], s["run_id"]) for s in shown["path"]] == [
        ("lead", root_id),
        ("billing", tree["billing"].id),
        ("biller", tree["biller"].id),
    ]
    assert shown["run_id"] == tree["biller"].id
    assert f"path lead ({root_id}) > billing ({tree['billing'].id}) > biller" in text
    assert result.status == "succeeded" and result.output == "Billed."
    assert after == {"lead": "succeeded", "billing": "succeeded", "biller": "succeeded"}
    assert ends["biller"] < ends["billing"] < ends["lead"]  # that child, then its ancestors
    assert [e["amount"] for e in effects(folder, "charge")] == [20.0]  # charged once
