"""A run is pinned to the agent version it started with.

The run row holds the agent's snapshot (instructions, model and script, limits, policy,
each tool's declaration and reference). Recovery replays journaled results; what still
has to run uses the pinned definition, whatever the agent file says now. A new run of
the edited file is a new version. (Changed or missing tool *code* after a crash, which
only a new process sees, is in test_sigkill_workers.py.)
"""

from __future__ import annotations

import shutil

import pytest
from crashkit import AGENTS, ObservedRuntime, SimulatedCrash, effects, of

from bosun import load_agent
from bosun.journal.events import RunStarted


@pytest.fixture
def fx(tmp_path, monkeypatch):
    folder = tmp_path / "effects"
    monkeypatch.setenv("RECOVERY_EFFECTS_DIR", str(folder))
    monkeypatch.delenv("RECOVERY_HOLD", raising=False)
    monkeypatch.delenv("RECOVERY_CRASH", raising=False)
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(AGENTS / "recovery_tools.py", project / "recovery_tools.py")
    shutil.copy(AGENTS / "pinned.yaml", project / "agent.yaml")
    return folder, project


async def test_editing_the_agent_file_does_not_change_a_run_in_flight(db_url, fx, monkeypatch):
    folder, project = fx
    v1 = load_agent(str(project / "agent.yaml"))
    monkeypatch.setenv("RECOVERY_CRASH", "save_note")
    async with ObservedRuntime(db_url, owner="w1", lease_seconds=5) as rt1:
        with pytest.raises(BaseException, match="process died") as died:
            await rt1.run(v1, "help")
        [run] = await rt1.store.list_runs(limit=1)
    assert type(died.value).__name__ == SimulatedCrash.__name__  # the copy's own class
    monkeypatch.delenv("RECOVERY_CRASH")

    # While the run is down, the file changes: instructions, limits, save_note's
    # declaration (no longer idempotent), and the whole model script.
    shutil.copy(AGENTS / "pinned_v2.yaml", project / "agent.yaml")
    v2 = load_agent(str(project / "agent.yaml"))
    assert v2.version_id != v1.version_id

    async with ObservedRuntime(db_url, owner="w2", lease_seconds=5) as rt2:
        resumed = await rt2.resume(run.id)
        events = await rt2.events(run.id)
        system_prompts = {r.messages[0]["content"] for r in rt2.requests}

        fresh = await rt2.run(v2, "help")
        fresh_events = await rt2.events(fresh.run_id)
        fresh_prompt = rt2.requests[-1].messages[0]["content"]

    # The resumed run is still version one, in every respect:
    assert (await _run_version(db_url, run.id)) == v1.version_id
    assert of(events, RunStarted)[0].agent_version == v1.version_id
    assert resumed.status == "succeeded" and resumed.output == "v1 done"  # v1's script
    assert system_prompts == {"Version one instructions."}
    first, second = effects(folder, "save_note")  # pinned idempotent=True: re-run, same key
    assert first["key"] == second["key"]
    assert resumed.tool_calls == 2  # more than version two's max_tool_calls of 1

    # A new run gets the new version.
    assert of(fresh_events, RunStarted)[0].agent_version == v2.version_id
    assert fresh.output == "v2 done" and fresh_prompt == "Version two instructions."


async def _run_version(db: str, run_id: str) -> str:
    async with ObservedRuntime(db) as rt:
        return (await rt.get_run(run_id)).agent_version
