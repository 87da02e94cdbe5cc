"""Run-tree budgets across real processes: a child whose worker is SIGKILLed still settles
with its parent when another worker finishes it, and two processes creating children of
one parent at the same moment cannot both take what the parent has left (PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from crashkit import AGENTS, DEADLINE, wait_until
from test_sigkill_workers import Outage

from bosun import Limits, Runtime, load_agent

pytestmark = pytest.mark.slow


@pytest.fixture
def outage(tmp_path, db_url):
    o = Outage(tmp_path, db_url)
    yield o
    o.cleanup()


async def test_a_child_whose_worker_was_sigkilled_still_settles_when_resumed(outage):
    agent = load_agent(str(AGENTS / "reruns.yaml"))
    async with Runtime(outage.db) as rt:
        parent = await rt.submit(agent, "parent", limits=Limits(max_steps=20, max_tokens=90_000))
        await rt.pause(parent)  # the parent waits; only its child runs
        child = await rt.submit(
            agent, "child", parent=parent, limits=Limits(max_steps=8, max_tokens=40_000)
        )
        held = await rt.get_run(parent)
        assert (held.child_steps, held.child_tokens) == (8, 40_000)

        outage.start_first(hold="sync_slow")
        await outage.started("call_1_0")  # the child is inside its second step's tool
        await outage.kill_and_recover(rt, child)

        result = await rt.result(child)
        assert result.status == "succeeded"
        done = await rt.get_run(child)
        after = await rt.get_run(parent)
    assert done.reserved_steps is None and done.reserved_tokens is None
    # The reservation became exactly what the child spent, once, whoever finished it.
    assert after.child_steps == done.steps == 4
    assert after.child_tokens == done.input_tokens + done.output_tokens
    assert after.child_tokens < 40_000


_CREATOR = textwrap.dedent(
    """
    import asyncio, json, sys, time
    from pathlib import Path
    from bosun import BudgetExhausted, Limits, Runtime, load_agent

    async def main(db, parent, agent_file, folder, name):
        agent = load_agent(str(agent_file))
        async with Runtime(db) as rt:
            Path(folder, "ready-" + name).touch()
            while not Path(folder, "go").exists():
                time.sleep(0.001)  # spin: both processes leave the gate together
            try:
                child = await rt.submit(agent, name, parent=parent, limits=Limits(max_steps=5))
            except BudgetExhausted as exc:
                print(json.dumps({"refused": str(exc)}))
                return
            limits = (await rt.events(child))[0][1].limits
            print(json.dumps({"child": child, "max_tokens": limits["max_tokens"]}))

    asyncio.run(main(*sys.argv[1:]))
    """
)


async def test_two_processes_creating_children_at_once_cannot_both_take_the_remainder(
    tmp_path: Path, pg_url: str
):
    agent_file = AGENTS / "reruns.yaml"
    async with Runtime(pg_url) as rt:
        parent = await rt.submit(load_agent(str(agent_file)), "p", limits=Limits(max_tokens=1000))
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", _CREATOR, pg_url, parent, str(agent_file), str(tmp_path), n],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for n in ("first", "second")
        ]
        try:
            await wait_until(
                "both creators to be ready",
                lambda: all((tmp_path / f"ready-{n}").exists() for n in ("first", "second")),
            )
            (tmp_path / "go").touch()
            outputs = []
            for proc in procs:
                out, err = await asyncio.to_thread(proc.communicate, timeout=DEADLINE)
                assert proc.returncode == 0, err
                outputs.append(json.loads(out))
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
        row = await rt.get_run(parent)
    made = [o for o in outputs if "child" in o]
    refused = [o for o in outputs if "refused" in o]
    # Each asked for everything the parent had left: exactly one got it.
    assert len(made) == 1 and len(refused) == 1, outputs
    assert made[0]["max_tokens"] == 1000
    assert "max_tokens (0 left)" in refused[0]["refused"]
    assert row.child_tokens == 1000
