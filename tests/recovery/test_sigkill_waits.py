"""Durable waits survive SIGKILLed workers (real `bosun worker` subprocesses, both stores).

The three moments a wait can lose or double its result: a worker killed while it delivers
a signal's result into the journal, a child finishing while its parent's worker is dead,
a timer firing while no worker runs at all, and (PostgreSQL) a delivering process killed
inside its own transaction. In each, the result enters the journal
exactly once and the run finishes. No timing guesses: workers are killed once a held tool
wrote its `started-` marker (crashkit), or once the journal shows the run parked.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest
from crashkit import (
    AGENTS,
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

from bosun import Agent, Runtime
from bosun.journal.events import RunResumed, ToolFinished, WaitResolved

pytestmark = pytest.mark.slow

WAITS = AGENTS / "wait_tools.py"


def agent(name: str, *turns: dict, tools: list[str]) -> Agent:
    return Agent(name=name, model={"provider": "scripted", "turns": list(turns)}, tools=tools)


def calls(*pairs: tuple[str, dict]) -> dict:
    return {"tool_calls": [{"name": n, "arguments": a} for n, a in pairs]}


def ref(path: Path, name: str) -> str:
    return f"{path}:{name}"


class Workers:
    def __init__(self, tmp_path: Path, db: str):
        self.db = db
        self.folder = tmp_path / "effects"
        self.log = tmp_path / "workers.log"
        self.env = worker_env(self.folder)
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *, hold: str = "", idle_exit: bool = False) -> subprocess.Popen[bytes]:
        env = worker_env(self.folder, RECOVERY_HOLD=hold) if hold else self.env
        proc = start_worker(self.db, env, self.log, exit_when_idle=idle_exit)
        self.procs.append(proc)
        return proc

    async def status(self, rt: Runtime, run_id: str, status: str) -> None:
        async def reached() -> bool:
            return (await rt.get_run(run_id)).status == status

        await wait_until(f"run {run_id} to be {status}", reached, self.log)

    def cleanup(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if self.log.exists():
            print(f"--- {self.log} ---\n{self.log.read_text()}")


@pytest.fixture
def workers(tmp_path, db_url):
    w = Workers(tmp_path, db_url)
    yield w
    w.cleanup()


def signal_cli(db: str, run_id: str, name: str, data: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "bosun", "signal", run_id, name, "--data", data, "--db", db],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


async def test_worker_killed_while_delivering_a_signal_journals_its_result_once(workers):
    """Two `bosun signal` processes race to deliver; the worker that wakes the run journals
    the result and is SIGKILLed in the very next call; the next worker finishes the run."""
    a = agent(
        "signalled",
        calls(("await_signal", {"name": "go"})),
        calls(("sync_slow", {"ref": "after-signal"})),
        {"content": "done"},
        tools=[ref(WAITS, "await_signal"), ref(TOOLS, "sync_slow")],
    )
    async with Runtime(workers.db) as rt:
        rt.register(a)
        run_id = await rt.submit(a, "wait for go")
        first = workers.start(hold="sync_slow")
        await workers.status(rt, run_id, "waiting")
        racers = [
            signal_cli(workers.db, run_id, "go", f'{{"n": {n}}}', workers.env) for n in (1, 2)
        ]
        for proc in racers:
            out = proc.communicate(timeout=DEADLINE)[0].decode()
            assert proc.returncode == 0, out
        marker = workers.folder / "started-call_1_0"
        await wait_until("the call after the wait to start", marker.exists, workers.log)
        sigkill(first)
        [resolved] = of(await rt.events(run_id), WaitResolved)  # journaled before the kill
        await wait_for_lease_expiry(rt, run_id, workers.log)
        finish_worker(workers.start(idle_exit=True), workers.log)
        result = await rt.result(run_id)
        events = await rt.events(run_id)
        [wait] = await rt.store.waits(run_id)

    assert result.status == "succeeded"
    assert of(events, WaitResolved) == [resolved]  # once, whatever the kill
    assert resolved.result == wait.result and resolved.result in ({"n": 1}, {"n": 2})
    assert of(events, ToolFinished, call_id="call_0_0")[0].result == resolved.result
    assert len(of(events, RunResumed)) == 2  # woken by the signal, then taken over
    assert [e["attempt"] for e in effects(workers.folder, "sync_slow")] == [1, 2]


async def test_child_finishing_while_its_parents_worker_is_dead_wakes_the_parent(workers):
    """The parent waits on a child, then its worker is SIGKILLed inside another call of the
    same step. The child ends meanwhile; the next worker resumes the parent, and the
    child's outcome becomes the call's result, once."""
    async with Runtime(workers.db) as rt:
        # The child waits on a signal, so it ends exactly when the test says.
        gated = agent(
            "gated-child",
            calls(("await_signal", {"name": "finish"})),
            {"content": "child says 42"},
            tools=[ref(WAITS, "await_signal")],
        )
        rt.register(gated)
        child_id = await rt.submit(gated, "compute")
        parent = agent(
            "parent",
            calls(("await_child", {"run_id": child_id}), ("sync_slow", {"ref": "meanwhile"})),
            {"content": "parent done"},
            tools=[ref(WAITS, "await_child"), ref(TOOLS, "sync_slow")],
        )
        rt.register(parent)
        parent_id = await rt.submit(parent, "delegate")
        first = workers.start(hold="sync_slow")
        await wait_until(
            "the parent's second call to start",
            (workers.folder / "started-call_0_1").exists,
            workers.log,
        )
        await workers.status(rt, child_id, "waiting")
        sigkill(first)  # the parent is `running`, leased to a dead worker, its wait pending
        await rt.signal(child_id, "finish", {"ok": True})
        await rt.resume(child_id)  # the child ends here, while no worker drives the parent
        assert (await rt.get_run(child_id)).status == "succeeded"
        [wait] = await rt.store.waits(parent_id)
        assert wait.status == "settled" and wait.result["output"] == "child says 42"
        await wait_for_lease_expiry(rt, parent_id, workers.log)
        finish_worker(workers.start(idle_exit=True), workers.log)
        result = await rt.result(parent_id)
        events = await rt.events(parent_id)

    assert result.status == "succeeded" and result.output == "parent done"
    [resolved] = of(events, WaitResolved)
    assert resolved.result["status"] == "succeeded"
    assert resolved.result["output"] == "child says 42"
    assert [e["attempt"] for e in effects(workers.folder, "sync_slow")] == [1, 2]


async def test_timer_firing_while_no_worker_runs_is_settled_by_the_next_worker(workers):
    a = agent(
        "sleeper",
        calls(("nap", {"seconds": 1.0})),
        {"content": "awake"},
        tools=[ref(WAITS, "nap")],
    )
    async with Runtime(workers.db) as rt:
        rt.register(a)
        run_id = await rt.submit(a, "sleep")
        first = workers.start()
        await workers.status(rt, run_id, "waiting")
        sigkill(first)  # nobody is left to sweep timers
        [wait] = await rt.store.waits(run_id)
        await wait_until("the timer to pass", lambda: time.time() > wait.deadline + 0.2)
        await asyncio.sleep(0)
        assert (await rt.get_run(run_id)).status == "waiting"  # fired, nobody saw it yet
        assert (await rt.store.get_wait(wait.id)).status == "pending"
        finish_worker(workers.start(idle_exit=True), workers.log)
        result = await rt.result(run_id)
        events = await rt.events(run_id)

    assert result.status == "succeeded" and result.output == "awake"
    [resolved] = of(events, WaitResolved)
    assert (resolved.status, resolved.result) == ("settled", "rested")
    assert resolved.ts >= wait.deadline


async def test_a_delivery_killed_inside_its_transaction_leaves_the_wait_for_the_next(
    tmp_path, pg_url
):
    """PostgreSQL, where many processes deliver: a `bosun signal` process is SIGKILLed in
    the middle of its transaction (it has locked the run and is settling the wait; the test
    holds the wait's row so that it stops exactly there, seen in `pg_stat_activity`, no
    timing guess). Nothing of it lands: the wait is still pending, a second delivery
    settles it, and the run finishes with that payload, journaled once."""
    import psycopg

    w = Workers(tmp_path, pg_url)
    a = agent(
        "signalled_once",
        calls(("await_signal", {"name": "go"})),
        {"content": "done"},
        tools=[ref(WAITS, "await_signal")],
    )
    try:
        async with Runtime(pg_url) as rt:
            rt.register(a)
            run_id = await rt.submit(a, "wait for go")
            w.start()
            await w.status(rt, run_id, "waiting")
            [wait] = await rt.store.waits(run_id)
            with psycopg.connect(pg_url) as holder:
                holder.execute("SELECT 1 FROM waits WHERE id=%s FOR UPDATE", (wait.id,))
                killed = signal_cli(pg_url, run_id, "go", '{"n": 1}', w.env)

                blocked_pids: list[int] = []

                def blocked() -> bool:  # the delivery's backend, waiting on our row lock
                    with psycopg.connect(pg_url, autocommit=True) as probe:
                        blocked_pids[:] = [
                            pid
                            for (pid,) in probe.execute(
                                "SELECT pid FROM pg_stat_activity"
                                " WHERE %s = ANY(pg_blocking_pids(pid))",
                                (holder.info.backend_pid,),
                            ).fetchall()
                        ]
                    return len(blocked_pids) == 1

                await wait_until("the delivery to block inside its transaction", blocked, w.log)
                sigkill(killed)
                holder.rollback()  # the dead delivery's backend goes on, then finds no client

            def gone() -> bool:
                with psycopg.connect(pg_url, autocommit=True) as probe:
                    row = probe.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (blocked_pids[0],)
                    ).fetchone()
                return row[0] == 0

            await wait_until("the killed delivery's transaction to end", gone, w.log)
            assert (await rt.store.get_wait(wait.id)).status == "pending"
            assert (await rt.get_run(run_id)).status == "waiting"
            second = signal_cli(pg_url, run_id, "go", '{"n": 2}', w.env)
            out = second.communicate(timeout=DEADLINE)[0].decode()
            assert second.returncode == 0, out
            result = await rt.wait(run_id, timeout=DEADLINE)
            events = await rt.events(run_id)
    finally:
        w.cleanup()

    assert result.status == "succeeded"
    [resolved] = of(events, WaitResolved)
    assert resolved.result == {"n": 2}
