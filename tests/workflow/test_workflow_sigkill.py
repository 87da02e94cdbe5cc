"""A workflow run survives SIGKILLed `bosun worker` subprocesses at each kind of step, on
SQLite and PostgreSQL: it resumes at the step it was in, finished fork branches keep their
results, waits (timer, listen, human task) hold nothing, and effects happen exactly once
(an idempotent call is repeated with the same key; an irreversible one is never repeated:
the run asks a person, as for any tool)."""

from __future__ import annotations

import json
import signal
import sys
import textwrap
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "recovery"))
from crashkit import (
    effects,
    finish_worker,
    sigkill,
    start_worker,
    wait_for_lease_expiry,
    wait_until,
    worker_env,
)

from bosun import Runtime
from bosun.journal.events import RunResumed, ToolFinished
from bosun.workflow import load_workflow
from bosun.workflow.tools import task_signal

pytestmark = pytest.mark.slow

TOOLS = Path(__file__).parent / "wf_recovery_tools.py"
FLOW = """
document:
  dsl: '1.0.3'
  namespace: test
  name: crashy
  version: '1.0.0'
  metadata:
    bosun:
      functions:
        lookup: TOOLS:lookup
        save_note: TOOLS:save_note
        charge: TOOLS:charge
do:
  - look:
      call: lookup
      with: {ref: order-1}
  - pause:
      wait: {milliseconds: 100}
  - hear:
      listen:
        to:
          one:
            with: {type: com.example.go}
  - ask:
      call: human
      with:
        title: Go on?
        form: {type: object, required: [ok], properties: {ok: {type: boolean}}}
  - both:
      fork:
        branches:
          - left:
              call: save_note
              with: {text: left}
          - right:
              call: save_note
              with: {text: right}
  - pay:
      call: charge
      with: {amount: 5}
  - tell:
      emit:
        event:
          with: {type: com.example.paid, source: https://example.com}
"""

# The step a worker is killed in (its function holds until SIGKILL): the marker it writes.
HOLDS = {
    "lookup": "started-_do_0_look",
    "save_note": "started-_do_4_both_fork_branches_0_left",
    "charge": "started-_do_5_pay",
}


@pytest.mark.parametrize("hold", list(HOLDS))
async def test_sigkill_in_each_kind_of_step(hold, tmp_path, db_url):
    path = tmp_path / "crashy.yaml"
    path.write_text(textwrap.dedent(FLOW).replace("TOOLS", str(TOOLS)))
    wf = load_workflow(str(path))
    folder, log = tmp_path / "effects", tmp_path / "workers.log"
    async with Runtime(db_url) as rt:
        run_id = await rt.submit(wf.agent, json.dumps({}))
        # The event and the person answer early: a signal is kept for the wait that takes it.
        await rt.signal(run_id, "com.example.go", {"go": True})
        await rt.signal(run_id, task_signal("/do/3/ask"), {"ok": True})
        first = start_worker(db_url, worker_env(folder, RECOVERY_HOLD=hold), log)
        try:
            await wait_until(f"{hold} to start", (folder / HOLDS[hold]).exists, log)
        finally:
            sigkill(first)
        await wait_for_lease_expiry(rt, run_id, log)
        second = start_worker(db_url, worker_env(folder), log)  # serves timers as they fall due

        async def ended() -> bool:
            run = await rt.get_run(run_id)
            return run.status in ("succeeded", "failed", "needs_attention")

        try:
            await wait_until("the run to end", ended, log)
        finally:
            second.send_signal(signal.SIGTERM)
            finish_worker(second, log)
        result = await rt.result(run_id)
        events = [e for _, e in await rt.events(run_id)]

    done = {e.call_id: e.result for e in events if isinstance(e, ToolFinished)}
    per_call: dict[str, list[dict]] = {}
    for effect in effects(folder):
        per_call.setdefault(effect["call_id"], []).append(effect)
    # Every call ran once, but the one killed: repeated with its key if idempotent.
    for call_id, runs in per_call.items():
        held = HOLDS[hold] == "started-" + call_id.replace("/", "_")
        if held and hold != "charge":
            assert len(runs) == 2 and runs[0]["key"] == runs[1]["key"], runs
        else:
            assert len(runs) == 1, (call_id, runs)
    assert any(isinstance(e, RunResumed) for e in events)
    if hold == "charge":  # irreversible and interrupted: a person decides, it never reruns
        assert result.status == "needs_attention", result.reason
        assert len(effects(folder, "charge")) == 1
        return
    assert result.status == "succeeded", result.reason
    assert done["/do/2/hear"] == {"go": True} and done["/do/3/ask"] == {"ok": True}
    assert done["/do/4/both/fork/branches/1/right"] == {"saved": "right"}
    assert json.loads(result.output)["type"] == "com.example.paid"
    assert [e["tool"] for e in effects(folder)].count("charge") == 1
