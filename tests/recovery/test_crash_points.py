"""Each crash point in docs/durability.md, proven in-process.

A run is driven until it "dies" at an exact point (see crashkit: a tool, a model call or
a commit listener raises `SimulatedCrash`), leaving the journal a dead process would
leave. A fresh `Runtime` with another owner then resumes it, and the test checks what
was (and was not) executed again: effects are counted in the tools' effects log, model
calls by recording the requests the new runtime makes.

The same crashes with real processes and SIGKILL are in test_sigkill_workers.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import time

import pytest
from crashkit import (
    ObservedRuntime,
    SimulatedCrash,
    calls,
    crash_after,
    effects,
    of,
    scripted_agent,
)

from bosun import Agent, Runtime, ToolContext, Worker, tool
from bosun.errors import BosunError, LeaseLost
from bosun.journal.events import (
    LimitReached,
    ModelResponded,
    RunFinished,
    RunNeedsAttention,
    RunResumed,
    RunStarted,
    ToolFinished,
    ToolProposed,
    ToolStarted,
)
from bosun.store.base import RunSummary

NOTE = ("save_note", {"text": "customer called"})
CHARGE = ("charge", {"amount": 5.0})


def note_then_charge():
    """Step 0 saves a note (idempotent), step 1 charges (irreversible), step 2 answers."""
    return scripted_agent(
        "note-charge",
        calls(NOTE),
        calls(CHARGE),
        {"content": "done"},
        tools=["save_note", "charge"],
        instructions="You help customers.",
    )


@pytest.fixture
def fx(tmp_path, monkeypatch):
    folder = tmp_path / "effects"
    monkeypatch.setenv("RECOVERY_EFFECTS_DIR", str(folder))
    monkeypatch.delenv("RECOVERY_CRASH", raising=False)
    monkeypatch.delenv("RECOVERY_HOLD", raising=False)
    return folder


async def crash(rt: Runtime, agent, text: str = "help") -> str:
    """Run `agent` on `rt` until it dies; return the run id."""
    with pytest.raises(SimulatedCrash):
        await rt.run(agent, text)
    [run] = await rt.store.list_runs(limit=1)
    return run.id


async def resume(db: str, run_id: str) -> tuple[ObservedRuntime, object, list]:
    """A fresh runtime (another process, as far as the journal can tell) resumes the run."""
    rt = ObservedRuntime(db, owner="w2", lease_seconds=5)
    async with rt:
        result = await rt.resume(run_id)
        events = await rt.events(run_id)
    return rt, result, events


# -- before, during and after a model call ------------------------------------------------


async def test_crash_before_a_model_call_resumes_by_calling_the_model(db_url, fx):
    agent = note_then_charge()
    async with ObservedRuntime(db_url, owner="w1", lease_seconds=5) as rt1:
        rt1.listeners.append(crash_after(ToolFinished, tool="save_note"))
        run_id = await crash(rt1, agent)
        before = await rt1.events(run_id)
    assert rt1.turns == [0]
    assert isinstance(before[-1][1], ToolFinished)  # the step boundary: step 0 fully committed

    rt2, result, events = await resume(db_url, run_id)

    assert result.status == "succeeded" and result.output == "done"
    assert rt2.turns == [1, 2]  # the next model call is made, step 0 is not asked again
    assert len(effects(fx, "save_note")) == 1 and len(effects(fx, "charge")) == 1
    assert of(events, RunResumed, worker="w2")


async def test_crash_during_a_model_call_leaves_no_trace_and_the_model_is_asked_again(db_url, fx):
    agent = note_then_charge()
    async with ObservedRuntime(db_url, owner="w1", lease_seconds=5, crash_on_turn=1) as rt1:
        run_id = await crash(rt1, agent)
        before = await rt1.events(run_id)
    assert rt1.turns == [0, 1]  # turn 1 was requested and the process died waiting for it
    assert not of(before, ModelResponded, step=1)  # nothing about it was committed

    rt2, result, events = await resume(db_url, run_id)

    assert result.status == "succeeded"
    assert rt2.turns == [1, 2]  # asked again: a model call is not an effect, it may repeat
    assert len(of(events, ModelResponded, step=1)) == 1  # the lost call is not in the journal
    assert len(of(events, ModelResponded)) == 3 and result.steps == 3
    assert len(effects(fx, "save_note")) == 1 and len(effects(fx, "charge")) == 1


async def test_crash_after_a_model_answer_replays_it_without_asking_the_model_again(db_url, fx):
    agent = scripted_agent(
        "answer-then-crash",
        calls(NOTE),
        {"content": "noted"},
        tools=["save_note"],
    )
    async with ObservedRuntime(db_url, owner="w1", lease_seconds=5) as rt1:
        # The answer is committed with the start of its first call, before the tool runs.
        rt1.listeners.append(crash_after(ModelResponded, step=0))
        run_id = await crash(rt1, agent)
        before = await rt1.events(run_id)
    assert of(before, ModelResponded, step=0) and of(before, ToolStarted, call_id="call_0_0")
    assert effects(fx) == []  # died before the tool ran

    rt2, result, events = await resume(db_url, run_id)

    assert result.status == "succeeded" and result.output == "noted"
    assert rt2.turns == [1]  # turn 0's answer came from the journal
    [note] = effects(fx, "save_note")
    starts = of(events, ToolStarted, call_id="call_0_0")
    assert [s.attempt for s in starts] == [1, 2]
    assert {s.idempotency_key for s in starts} == {note["key"]}


async def test_crash_after_a_model_answer_parks_a_non_idempotent_call_it_cannot_prove_unstarted(
    db_url, fx
):
    """The journal says the charge started; it cannot say the process died before the
    first byte reached the payment API. So the run parks rather than guess."""
    agent = scripted_agent("answer-then-crash", calls(CHARGE), {"content": "x"}, tools=["charge"])
    async with ObservedRuntime(db_url, owner="w1", lease_seconds=5) as rt1:
        rt1.listeners.append(crash_after(ModelResponded, step=0))
        run_id = await crash(rt1, agent)

    rt2, result, events = await resume(db_url, run_id)

    assert result.status == "needs_attention"
    assert effects(fx) == [] and rt2.turns == []
    [parked] = of(events, RunNeedsAttention)
    assert parked.call_id == "call_0_0" and "call_0_0 (charge)" in parked.reason


# -- before, during and after a tool call -------------------------------------------------


async def test_crash_before_a_tool_call_runs_it_exactly_once_on_resume(db_url, fx, monkeypatch):
    """One answer proposes a lookup and a charge; the process dies inside the lookup, so
    the charge was proposed (committed) but never started."""
    agent = scripted_agent(
        "two-calls",
        calls(("lookup", {"ref": "A-1"}), CHARGE),
        {"content": "charged"},
        tools=["lookup", "charge"],
    )
    monkeypatch.setenv("RECOVERY_CRASH", "lookup")
    async with ObservedRuntime(db_url, owner="w1", lease_seconds=5) as rt1:
        run_id = await crash(rt1, agent)
        before = await rt1.events(run_id)
    assert of(before, ToolProposed, tool="charge") and not of(before, ToolStarted, tool="charge")
    monkeypatch.delenv("RECOVERY_CRASH")

    rt2, result, _ = await resume(db_url, run_id)

    assert result.status == "succeeded"
    assert len(effects(fx, "charge")) == 1
    assert len(effects(fx, "lookup")) == 2  # idempotent, interrupted: run again, same key
    assert rt2.turns == [1]


async def test_crash_during_an_idempotent_tool_reruns_it_with_the_same_key(db_url, fx, monkeypatch):
    agent = note_then_charge()
    monkeypatch.setenv("RECOVERY_CRASH", "save_note")
    async with ObservedRuntime(db_url, owner="w1", lease_seconds=5) as rt1:
        run_id = await crash(rt1, agent)
    monkeypatch.delenv("RECOVERY_CRASH")

    rt2, result, events = await resume(db_url, run_id)

    assert result.status == "succeeded"
    first, second = effects(fx, "save_note")
    assert first["key"] == second["key"] == f"{run_id}:call_0_0"
    assert (first["attempt"], second["attempt"]) == (1, 2)
    assert len(of(events, ToolFinished, tool="save_note")) == 1
    assert len(effects(fx, "charge")) == 1
    assert rt2.turns == [1, 2]  # the interrupted step's answer is not asked for again


async def test_crash_during_a_non_idempotent_tool_parks_the_run_and_never_repeats_it(
    db_url, fx, monkeypatch
):
    agent = note_then_charge()
    monkeypatch.setenv("RECOVERY_CRASH", "charge")
    async with ObservedRuntime(db_url, owner="w1", lease_seconds=5) as rt1:
        run_id = await crash(rt1, agent)
    monkeypatch.delenv("RECOVERY_CRASH")

    rt2, result, events = await resume(db_url, run_id)

    assert result.status == "needs_attention"
    assert len(effects(fx, "charge")) == 1 and len(effects(fx, "save_note")) == 1
    assert rt2.turns == []
    [parked] = of(events, RunNeedsAttention)
    assert parked.call_id == "call_1_0"
    assert "call_1_0 (charge)" in parked.reason and "not idempotent" in parked.reason
    assert result.reason == parked.reason
    async with Runtime(db_url) as rt:
        assert (await rt.get_run(run_id)).status == "needs_attention"


async def test_crash_after_a_tool_result_is_committed_replays_the_result_not_the_tool(db_url, fx):
    agent = scripted_agent(
        "charge-then-answer", calls(CHARGE), {"content": "charged"}, tools=["charge"]
    )
    async with ObservedRuntime(db_url, owner="w1", lease_seconds=5) as rt1:
        rt1.listeners.append(crash_after(ToolFinished, tool="charge"))
        run_id = await crash(rt1, agent)

    rt2, result, events = await resume(db_url, run_id)

    assert result.status == "succeeded"
    [executed] = effects(fx, "charge")
    assert executed["attempt"] == 1
    # The model is shown the journaled result, exactly as the first process recorded it.
    [request] = rt2.requests
    tool_messages = [m for m in request.messages if m["role"] == "tool"]
    assert [json.loads(m["content"]) for m in tool_messages] == [{"charged": 5.0, "code": "v1"}]
    assert len(of(events, ToolStarted, tool="charge")) == 1


# -- while parked -------------------------------------------------------------------------


async def test_a_parked_run_is_never_claimed_and_stays_parked_across_restarts(
    db_url, fx, monkeypatch
):
    agent = note_then_charge()
    monkeypatch.setenv("RECOVERY_CRASH", "charge")
    async with Runtime(db_url, owner="w1", lease_seconds=5) as rt1:
        run_id = await crash(rt1, agent)
    monkeypatch.delenv("RECOVERY_CRASH")
    await resume(db_url, run_id)  # parks it
    parked_events = None

    for restart in range(2):  # two worker "restarts": fresh runtimes, fresh workers
        async with Runtime(db_url, owner=f"restart-{restart}", lease_seconds=5) as rt:
            worker = Worker(rt, poll_interval=0.01)
            await worker.serve(exit_when_idle=True)
            assert worker.completed == 0
            run = await rt.get_run(run_id)
            assert run.status == "needs_attention" and run.lease_owner is None
            with pytest.raises(BosunError, match="needs attention"):
                await rt.resume(run_id)
            events = await rt.events(run_id)
        parked_events = parked_events or events
        assert events == parked_events  # nothing was appended
    assert len(effects(fx, "charge")) == 1


async def test_a_run_waiting_for_approval_holds_nothing_in_memory_and_resumes_after_it(db_url, fx):
    """`suggest` autonomy: every effectful call waits for a person. The process that
    parked the run is gone; the approval arrives later; any worker finishes the run."""
    agent = scripted_agent(
        "approve-charge",
        calls(CHARGE),
        {"content": "charged"},
        tools=["charge"],
        autonomy="suggest",
    )
    async with Runtime(db_url, owner="w1", lease_seconds=5) as rt1:
        waiting = await rt1.run(agent, "charge me")
    assert waiting.status == "waiting_approval" and effects(fx) == []

    async with Runtime(db_url, owner="w2", lease_seconds=5) as rt2:
        idle = Worker(rt2, poll_interval=0.01)
        await idle.serve(exit_when_idle=True)
        assert idle.completed == 0  # not claimable while it waits
        [approval] = await rt2.approvals()
        await rt2.approve(approval.id, by="supervisor")
        worker = Worker(rt2, poll_interval=0.01)
        await worker.serve(exit_when_idle=True)
        result = await rt2.result(waiting.run_id)
    assert result.status == "succeeded"
    assert len(effects(fx, "charge")) == 1


# -- leases ---------------------------------------------------------------------------------


async def test_a_worker_that_lost_its_lease_cannot_append(db_url, fx):
    agent = note_then_charge()
    async with Runtime(db_url, owner="w1", lease_seconds=5) as rt:
        run_id = await rt.submit(agent, "help")
        store = rt.store
        assert await store.claim_one("w1", run_id, lease_seconds=30) is not None
        assert await store.claim_one("w2", run_id, lease_seconds=30) is None  # live lease
        # w1 stops heart-beating (paused, partitioned); its lease runs out; w2 takes over.
        await store.heartbeat("w1", [run_id], lease_seconds=-1)
        assert await store.claim_one("w2", run_id, lease_seconds=30) is not None
        before = await store.events(run_id)
        summary = RunSummary(
            status="running", steps=0, tool_calls=0, input_tokens=0, output_tokens=0, cost=0.0
        )
        with pytest.raises(LeaseLost):
            await store.append(
                run_id,
                [RunFinished(status="failed", reason="stale")],
                first_seq=2,
                owner="w1",
                summary=summary,
            )
        assert await store.events(run_id) == before
        assert await store.heartbeat("w1", [run_id], lease_seconds=30) == set()
        assert isinstance(before[0][1], RunStarted) and len(before) == 1


GATE: dict[str, asyncio.Event] = {}


@tool(effect="irreversible", idempotent=False)
async def gated_charge(amount: float, ctx: ToolContext) -> dict:
    """Charge, but only once the test opens the gate (so it can act mid-call)."""
    GATE["started"].set()
    await GATE["open"].wait()
    await _record("gated_charge", ctx)
    return {"charged": amount}


async def _record(name: str, ctx: ToolContext) -> None:
    folder = os.environ["RECOVERY_EFFECTS_DIR"]
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "effects.jsonl"), "a") as f:
        f.write(json.dumps({"tool": name, "key": ctx.idempotency_key}) + "\n")


async def test_a_worker_whose_own_lease_lapsed_does_not_drive_the_run_twice(db_url, fx):
    """If a worker's event loop stalls past its lease, its next claim takes its own run
    again. That renews the lease; it must not start a second copy of the run under the
    same owner (the fence could not tell the two apart)."""
    GATE.update(started=asyncio.Event(), open=asyncio.Event())
    agent = Agent(
        name="gated",
        model={
            "provider": "scripted",
            "turns": [calls(("gated_charge", {"amount": 2.0})), {"content": "ok"}],
        },
        tools=[gated_charge],
    )
    # A long lease: the heartbeat (every lease/3) stays quiet, so only a claim renews it.
    async with Runtime(db_url, owner="w1", lease_seconds=60) as rt:
        run_id = await rt.submit(agent, "charge")
        worker = Worker(rt, poll_interval=0.01)
        serving = asyncio.create_task(worker.serve(exit_when_idle=True))
        await asyncio.wait_for(GATE["started"].wait(), 30)
        await rt.store.heartbeat("w1", [run_id], lease_seconds=-1)  # the lease lapses

        async def renewed() -> bool:
            run = await rt.get_run(run_id)
            return run.lease_expires_at is not None and run.lease_expires_at > time.time()

        deadline = time.monotonic() + 30
        while not await renewed():  # the worker's next poll claims the run again
            assert time.monotonic() < deadline, "the worker never claimed the run again"
            await asyncio.sleep(0.01)
        GATE["open"].set()
        await asyncio.wait_for(serving, 30)
        result = await rt.result(run_id)
    assert result.status == "succeeded"
    assert len(effects(fx, "gated_charge")) == 1


async def test_crash_re_attempts_of_one_call_do_not_count_as_repetitions(db_url, fx, monkeypatch):
    """max_repeats counts what the model proposed: four interrupted attempts of one proposed
    idempotent call are one proposal, and the fifth finishes the run."""
    agent = scripted_agent("note-once", calls(NOTE), {"content": "noted"}, tools=["save_note"])
    monkeypatch.setenv("RECOVERY_CRASH", "save_note")
    async with ObservedRuntime(db_url, owner="w1", lease_seconds=5) as rt1:
        run_id = await crash(rt1, agent)
    for attempt in range(2, 5):  # three more interruptions of the same call
        async with ObservedRuntime(db_url, owner=f"w{attempt}", lease_seconds=5) as rt:
            with pytest.raises(SimulatedCrash):
                await rt.resume(run_id)
    monkeypatch.delenv("RECOVERY_CRASH")

    _, result, events = await resume(db_url, run_id)

    assert result.status == "succeeded", result.reason
    assert [e["attempt"] for e in effects(fx, "save_note")] == [1, 2, 3, 4, 5]
    assert not of(events, LimitReached)


async def test_the_same_call_proposed_again_and_again_still_hits_max_repeats(db_url, fx):
    agent = scripted_agent(
        "note-loop", *[calls(NOTE) for _ in range(6)], {"content": "never"}, tools=["save_note"]
    )
    async with Runtime(db_url) as rt:
        result = await rt.run(agent, "loop")
    assert result.status == "limit_exceeded"
    assert "proposed save_note 5 times in a row" in result.reason
    assert len(effects(fx, "save_note")) == 4


async def test_a_call_that_kills_every_attempt_parks_after_five(db_url, fx, monkeypatch):
    """A tool that takes the process down every time (an OOM, a segfault in a C library)
    is re-attempted a bounded number of times, then the run parks with the call named."""
    agent = scripted_agent("note-crash", calls(NOTE), {"content": "noted"}, tools=["save_note"])
    monkeypatch.setenv("RECOVERY_CRASH", "save_note")
    async with ObservedRuntime(db_url, owner="w1", lease_seconds=5) as rt1:
        run_id = await crash(rt1, agent)
    for attempt in range(2, 6):
        async with ObservedRuntime(db_url, owner=f"w{attempt}", lease_seconds=5) as rt:
            with pytest.raises(SimulatedCrash):
                await rt.resume(run_id)

    _, result, events = await resume(db_url, run_id)  # the sixth attempt is not made

    assert result.status == "needs_attention"
    assert "tried 6 times in a row without progress" in result.reason
    assert "call call_0_0, save_note" in result.reason
    assert len(effects(fx, "save_note")) == 5
    assert of(events, RunNeedsAttention)[-1].call_id == "call_0_0"
