"""Agents as tools survive SIGKILLed workers (real worker subprocesses, both stores).

Two moments: the parent's worker killed while the child runs (the parent is parked and
holds no worker; the child is resumed by the next worker, finishes, and wakes the parent
with its answer), and a worker killed in the one window where a second child could be
born: right after the child's run was created, before the parent's wait on it was
committed. In both the tree finishes with exactly one child.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from crashkit import (
    DEADLINE,
    TOOLS,
    effects,
    finish_worker,
    of,
    sigkill,
    start_worker,
    wait_for_lease_expiry,
    wait_until,
    worker_env,
)

from bosun import Agent, Limits, Runtime
from bosun.journal.events import RunResumed, ToolFinished, ToolStarted, WaitRequested

pytestmark = pytest.mark.slow


def scripted(*turns: dict) -> dict:
    return {"provider": "scripted", "turns": list(turns)}


def calls(*pairs: tuple[str, dict]) -> dict:
    return {"tool_calls": [{"name": n, "arguments": a} for n, a in pairs]}


def tree() -> tuple[Agent, Agent]:
    """A parent that delegates to a `syncer` child agent, whose one call is slow."""
    child = Agent(
        name="syncer",
        model=scripted(calls(("sync_slow", {"ref": "A1"})), {"content": "A1 is synced"}),
        tools=[f"{TOOLS}:sync_slow"],
        limits=Limits(max_steps=5),
    )
    parent = Agent(
        name="lead",
        model=scripted(calls(("syncer", {"input": "sync A1"})), {"content": "All synced."}),
        tools=[child],
    )
    return parent, child


# A worker that dies (SIGKILL, by its own hand) right after it created an agent call's child
# run: the parent's journal has the call started and no wait yet.
DIES_AFTER_SPAWN = """
import asyncio, os, signal, sys
from bosun import Runtime, Worker

async def main():
    async with Runtime(sys.argv[1], lease_seconds=1) as rt:
        spawn = rt._spawn_child
        async def spawn_then_die(*args):
            await spawn(*args)
            os.kill(os.getpid(), signal.SIGKILL)
        rt._spawn_child = spawn_then_die
        await Worker(rt, poll_interval=0.05).serve()

asyncio.run(main())
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "effects"


async def test_parents_worker_killed_while_the_child_runs(tmp_path, folder, db_url):
    log = tmp_path / "workers.log"
    parent, _ = tree()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        async with Runtime(db_url) as rt:
            parent_id = await rt.submit(parent, "sync everything")
            first = start_worker(db_url, worker_env(folder, RECOVERY_HOLD="sync_slow"), log)
            procs.append(first)
            # The child's slow call has begun; the parent is parked on the child.
            await wait_until("the child's call to start", (folder / "started-call_0_0").exists, log)

            # The worker drives the tree's runs concurrently: the parent's park may commit
            # a moment after the child's call began.
            async def parked() -> bool:
                return (await rt.get_run(parent_id)).status == "waiting"

            await wait_until("the parent to park on its child", parked, log)
            [child] = await rt.store.list_runs(parent_id=parent_id)
            assert child.status == "running"
            sigkill(first)
            await wait_for_lease_expiry(rt, child.id, log)
            second = start_worker(db_url, worker_env(folder), log, exit_when_idle=True)
            procs.append(second)
            finish_worker(second, log)
            result = await rt.result(parent_id)
            events = await rt.events(parent_id)
            children = await rt.store.list_runs(parent_id=parent_id)
            child_events = await rt.events(child.id)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    assert result.status == "succeeded" and result.output == "All synced."
    assert [c.id for c in children] == [child.id]  # exactly one child
    assert of(child_events, RunResumed)  # the child was taken over by the next worker
    [answer] = of(events, ToolFinished, tool="syncer")
    assert answer.result == {"answer": "A1 is synced", "run_id": child.id}
    assert [e["attempt"] for e in effects(folder, "sync_slow")] == [1, 2]  # idempotent retry


async def test_worker_killed_right_after_creating_the_child_makes_no_second(
    tmp_path, folder, db_url
):
    log = tmp_path / "workers.log"
    script = tmp_path / "dies_after_spawn.py"
    script.write_text(DIES_AFTER_SPAWN)
    parent, _ = tree()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        async with Runtime(db_url) as rt:
            parent_id = await rt.submit(parent, "sync everything")
            with open(log, "ab") as out:
                dying = subprocess.Popen(
                    [sys.executable, str(script), db_url],
                    env=worker_env(folder),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            procs.append(dying)
            assert dying.wait(timeout=DEADLINE) == -9, log.read_text()
            [child] = await rt.store.list_runs(parent_id=parent_id)
            before = await rt.events(parent_id)
            assert of(before, ToolStarted, tool="syncer") and not of(before, WaitRequested)
            await wait_for_lease_expiry(rt, parent_id, log)
            worker = start_worker(db_url, worker_env(folder), log, exit_when_idle=True)
            procs.append(worker)
            finish_worker(worker, log)
            result = await rt.result(parent_id)
            events = await rt.events(parent_id)
            children = await rt.store.list_runs(parent_id=parent_id)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    assert result.status == "succeeded" and result.output == "All synced."
    assert [c.id for c in children] == [child.id]  # the repeated call found the same child
    assert [w.key for w in of(events, WaitRequested)] == [child.id]
    assert len(of(events, ToolStarted, tool="syncer")) == 2  # started again on resume
    assert of(events, ToolFinished, tool="syncer")[0].result["answer"] == "A1 is synced"
    assert [e["attempt"] for e in effects(folder, "sync_slow")] == [1]


async def test_an_approval_inside_the_child_survives_a_killed_worker(tmp_path, folder, db_url):
    """The child parks on an approval, its parent on the child; the worker is SIGKILLed.
    The approval is still in the inbox; approving it lets the next worker finish the tree,
    and the approved charge runs once."""
    log = tmp_path / "workers.log"
    policy = {
        "name": "charges-need-finance",
        "rules": [{"name": "finance", "tools": ["charge"], "effect": "require_approval"}],
    }
    child = Agent(
        name="biller",
        model=scripted(calls(("charge", {"amount": 20.0})), {"content": "charged 20"}),
        tools=[f"{TOOLS}:charge"],
        policy=policy,
        limits=Limits(max_steps=5),
    )
    parent = Agent(
        name="lead",
        model=scripted(calls(("biller", {"input": "charge 20"})), {"content": "Charged."}),
        tools=[child],
    )
    procs: list[subprocess.Popen[bytes]] = []
    try:
        async with Runtime(db_url) as rt:
            parent_id = await rt.submit(parent, "bill the customer")
            first = start_worker(db_url, worker_env(folder), log)
            procs.append(first)

            async def parked() -> bool:
                return bool(await rt.approvals()) and (
                    (await rt.get_run(parent_id)).status == "waiting"
                )

            await wait_until("the child's approval and the parent's wait", parked, log)
            sigkill(first)
            [approval] = await rt.approvals()
            await rt.approve(approval.id, by="finance@example.com")
            second = start_worker(db_url, worker_env(folder), log, exit_when_idle=True)
            procs.append(second)
            finish_worker(second, log)
            result = await rt.result(parent_id)
            children = await rt.store.list_runs(parent_id=parent_id)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    assert result.status == "succeeded" and result.output == "Charged."
    assert [c.id for c in children] == [approval.run_id]
    assert [c.status for c in children] == ["succeeded"]
    assert [e["attempt"] for e in effects(folder, "charge")] == [1]
