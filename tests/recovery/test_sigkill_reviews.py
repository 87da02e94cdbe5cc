"""A review in flight survives a SIGKILLed worker (real worker subprocesses, both stores).

The proposer's charge above the cap goes to the qa reviewer; the reviewer's own call is
held, and the worker is SIGKILLed in the middle of the review. The proposer is parked on the
review (a durable child wait) and holds no worker; the next worker resumes the reviewer,
whose verdict wakes the proposer, and the approved charge runs exactly once.
"""

from __future__ import annotations

import subprocess
import sys

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
from bosun.journal.events import ReviewDecided, ReviewRequested, RunResumed, ToolFinished

pytestmark = pytest.mark.slow


def scripted(*turns: dict) -> dict:
    return {"provider": "scripted", "turns": list(turns)}


def calls(*pairs: tuple[str, dict]) -> dict:
    return {"tool_calls": [{"name": n, "arguments": a} for n, a in pairs]}


def team() -> Agent:
    qa = Agent(
        name="qa",
        model=scripted(
            calls(("lookup", {"ref": "1234"})),  # held: the worker dies here, mid-review
            {"content": '{"verdict": "approve", "reason": "order 1234 is damaged"}'},
        ),
        tools=[f"{TOOLS}:lookup"],
        limits=Limits(max_steps=4),
    )
    return Agent(
        name="biller",
        model=scripted(calls(("charge", {"amount": 250.0})), {"content": "Charged 250."}),
        tools=[f"{TOOLS}:charge"],
        reviewers=[qa],
        policy={
            "name": "cap",
            "rules": [
                {
                    "name": "above-cap",
                    "tools": ["charge"],
                    "when": "args.amount > 100.0",
                    "review": "agent:qa",
                }
            ],
        },
    )


async def test_a_review_in_flight_survives_a_killed_worker(tmp_path, db_url):
    folder, log = tmp_path / "effects", tmp_path / "workers.log"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        async with Runtime(db_url) as rt:
            run_id = await rt.submit(team(), "charge the customer")
            first = start_worker(db_url, worker_env(folder, RECOVERY_HOLD="lookup"), log)
            procs.append(first)
            await wait_until(
                "the reviewer's call to start", (folder / "started-call_0_0").exists, log
            )

            async def parked() -> bool:  # the proposer parks on the review, holding no worker
                return (await rt.get_run(run_id)).status == "waiting"

            await wait_until("the proposer to park on the review", parked, log)
            [reviewer] = await rt.store.list_runs(parent_id=run_id)
            assert reviewer.agent == "qa" and reviewer.status == "running"
            sigkill(first)
            await wait_for_lease_expiry(rt, reviewer.id, log)
            second = start_worker(db_url, worker_env(folder), log, exit_when_idle=True)
            procs.append(second)
            finish_worker(second, log)
            result = await rt.result(run_id)
            events = await rt.events(run_id)
            children = await rt.store.list_runs(parent_id=run_id)
            reviewer_events = await rt.events(reviewer.id)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    assert result.status == "succeeded" and result.output == "Charged 250."
    assert [c.id for c in children] == [reviewer.id]  # one review, never a second
    assert of(reviewer_events, RunResumed)  # the next worker took the review over
    assert len(of(events, ReviewRequested)) == 1
    [decided] = of(events, ReviewDecided)
    assert decided.verdict == "approve" and decided.run_id == reviewer.id
    assert of(events, ToolFinished, tool="charge")[0].result["charged"] == 250.0
    assert len(effects(folder, "charge")) == 1  # the approved charge ran exactly once
    assert [e["attempt"] for e in effects(folder, "lookup")] == [1, 2]


# A worker that dies (SIGKILL, by its own hand) right after it created the reviewer's run,
# before the proposer's `ReviewRequested` and wait were committed.
DIES_AFTER_SPAWN = """
import asyncio, os, signal, sys
from bosun import Runtime, Worker

async def main():
    async with Runtime(sys.argv[1], lease_seconds=1) as rt:
        spawn = rt._spawn_child
        async def spawn_then_die(*args, **kwargs):
            await spawn(*args, **kwargs)
            os.kill(os.getpid(), signal.SIGKILL)
        rt._spawn_child = spawn_then_die
        await Worker(rt, poll_interval=0.05).serve()

asyncio.run(main())
"""


async def test_a_worker_killed_right_after_starting_the_review_makes_no_second(tmp_path, db_url):
    folder, log = tmp_path / "effects", tmp_path / "workers.log"
    script = tmp_path / "dies_after_spawn.py"
    script.write_text(DIES_AFTER_SPAWN)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        async with Runtime(db_url) as rt:
            run_id = await rt.submit(team(), "charge the customer")
            with open(log, "ab") as out:
                dying = subprocess.Popen(
                    [sys.executable, str(script), db_url],
                    env=worker_env(folder),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            procs.append(dying)
            assert dying.wait(timeout=DEADLINE) == -9, log.read_text()
            [reviewer] = await rt.store.list_runs(parent_id=run_id)
            assert not of(await rt.events(run_id), ReviewRequested)  # died before the commit
            await wait_for_lease_expiry(rt, run_id, log)
            worker = start_worker(db_url, worker_env(folder), log, exit_when_idle=True)
            procs.append(worker)
            finish_worker(worker, log)
            result = await rt.result(run_id)
            events = await rt.events(run_id)
            children = await rt.store.list_runs(parent_id=run_id)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    assert result.status == "succeeded" and result.output == "Charged 250."
    assert [c.id for c in children] == [reviewer.id]  # the repeated review found the same run
    assert [r.run_id for r in of(events, ReviewRequested)] == [reviewer.id]
    assert len(effects(folder, "charge")) == 1


def answering_team() -> Agent:
    """An agent whose final answer is reviewed; the reviewer's own call is held, so the
    worker can be SIGKILLed while the answer waits for its verdict."""
    qa = Agent(
        name="qa",
        model=scripted(
            calls(("lookup", {"ref": "1234"})),  # held: the worker dies here, mid-review
            {"content": '{"verdict": "approve", "reason": "matches order 1234"}'},
        ),
        tools=[f"{TOOLS}:lookup"],
        limits=Limits(max_steps=4),
    )
    return Agent(
        name="answerer",
        model=scripted({"content": "Order 1234 ships today."}),
        reviewers=[qa],
        review_answer="agent:qa",
    )


async def test_an_answer_review_in_flight_survives_a_killed_worker(tmp_path, db_url):
    folder, log = tmp_path / "effects", tmp_path / "workers.log"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        async with Runtime(db_url) as rt:
            run_id = await rt.submit(answering_team(), "where is order 1234?")
            first = start_worker(db_url, worker_env(folder, RECOVERY_HOLD="lookup"), log)
            procs.append(first)
            await wait_until(
                "the reviewer's call to start", (folder / "started-call_0_0").exists, log
            )

            async def parked() -> bool:  # the answer waits for its review, holding no worker
                return (await rt.get_run(run_id)).status == "waiting"

            await wait_until("the answer to park on its review", parked, log)
            assert (await rt.get_run(run_id)).output is None  # not given before the verdict
            [reviewer] = await rt.store.list_runs(parent_id=run_id)
            assert reviewer.agent == "qa" and reviewer.status == "running"
            sigkill(first)
            await wait_for_lease_expiry(rt, reviewer.id, log)
            second = start_worker(db_url, worker_env(folder), log, exit_when_idle=True)
            procs.append(second)
            finish_worker(second, log)
            result = await rt.result(run_id)
            events = await rt.events(run_id)
            children = await rt.store.list_runs(parent_id=run_id)
            reviewer_events = await rt.events(reviewer.id)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    assert result.status == "succeeded" and result.output == "Order 1234 ships today."
    assert [c.id for c in children] == [reviewer.id]  # one review, never a second
    assert of(reviewer_events, RunResumed)  # the next worker took the review over
    [requested] = of(events, ReviewRequested)
    assert requested.tool == "answer"
    [decided] = of(events, ReviewDecided)
    assert decided.verdict == "approve" and decided.run_id == reviewer.id
