"""Crash recovery with real processes: `bosun worker` subprocesses killed with SIGKILL.

No timing guesses. A worker is killed only once it is provably at the crash point: a
slow tool writes `started-<call_id>` and blocks (crashkit, RECOVERY_HOLD), or the model
server has received the request and holds it. The test waits (bounded) for that signal,
checks the journal says what the crash point means, sends SIGKILL, waits for the dead
worker's lease (1 s) to run out, and starts a second worker with `--exit-when-idle`.
Side effects are counted in the tools' effects log, never inferred from timing.
"""

from __future__ import annotations

import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from crashkit import (
    AGENTS,
    DEADLINE,
    TOOLS,
    bosun_cli,
    effects,
    finish_worker,
    of,
    sigkill,
    start_worker,
    submit,
    tool_ref,
    wait_for_lease_expiry,
    wait_until,
    worker_env,
)

from bosun import Agent, Runtime
from bosun.govern import audit
from bosun.journal.events import (
    ModelResponded,
    PolicyDecided,
    RunNeedsAttention,
    RunResumed,
    ToolFinished,
    ToolStarted,
)

pytestmark = pytest.mark.slow


class Outage:
    """One crash-and-recover cycle: worker 1 (holding in `hold`) is killed at the marker."""

    def __init__(self, tmp_path: Path, db: str):
        self.db = db
        self.folder = tmp_path / "effects"
        self.log = tmp_path / "workers.log"
        self.env = worker_env(self.folder)
        self.first = None

    def start_first(self, hold: str = "") -> None:
        self.first = start_worker(self.db, worker_env(self.folder, RECOVERY_HOLD=hold), self.log)

    async def started(self, call_id: str) -> None:
        marker = self.folder / f"started-{call_id}"
        await wait_until(f"{call_id} to start in worker 1", marker.exists, self.log)

    async def kill_and_recover(self, rt: Runtime, run_id: str) -> None:
        assert self.first is not None
        sigkill(self.first)
        await wait_for_lease_expiry(rt, run_id, self.log)
        finish_worker(start_worker(self.db, self.env, self.log, exit_when_idle=True), self.log)

    def cleanup(self) -> None:
        if self.first is not None and self.first.poll() is None:
            self.first.kill()
            self.first.wait()
        if self.log.exists():  # pytest shows it when the test failed
            print(f"--- {self.log} ---\n{self.log.read_text()}")


async def assert_every_decision_is_chained_once(rt: Runtime, run_id: str) -> None:
    """The governance record survives the crash: each policy decision the journal holds is in
    the audit chain exactly once (the dead worker may not have chained its last ones)."""
    journal = [e.call_id for e in of(await rt.events(run_id), PolicyDecided)]
    chained = [
        r.entry.data["call_id"]
        for r in await rt.store.audit_records()
        if r.entry.action == "policy_decided" and r.entry.subject == run_id
    ]
    assert journal and chained == journal
    assert (await audit.verify(rt.store)).ok


@pytest.fixture
def outage(tmp_path, db_url):
    o = Outage(tmp_path, db_url)
    yield o
    o.cleanup()


async def test_irreversible_tool_interrupted_by_sigkill_is_parked_not_repeated(outage):
    run_id = submit(outage.db, AGENTS / "parks.yaml", "refund me", outage.env)
    outage.start_first(hold="charge_slow")
    await outage.started("call_1_0")

    async with Runtime(outage.db) as rt:
        before = await rt.events(run_id)
        assert of(before, ToolFinished, tool="save_note")  # step 0 committed
        assert of(before, ToolStarted, tool="charge_slow")  # the charge started, no result
        await outage.kill_and_recover(rt, run_id)
        run = await rt.get_run(run_id)
        await assert_every_decision_is_chained_once(rt, run_id)

    assert run.status == "needs_attention"
    assert "call_1_0 (charge_slow)" in (run.reason or "")
    assert len(effects(outage.folder, "charge_slow")) == 1  # not repeated
    assert len(effects(outage.folder, "save_note")) == 1  # completed: not repeated either
    shown = json.loads(bosun_cli("show", run_id, "--db", outage.db, "--json", env=outage.env))
    kinds = [e["kind"] for e in shown]
    assert kinds[-2:] == ["run_resumed", "run_needs_attention"]
    assert shown[-1]["call_id"] == "call_1_0"
    assert kinds.count("tool_started") == 2  # save_note, and the one charge attempt


async def test_idempotent_tool_interrupted_by_sigkill_reruns_with_the_same_key(outage):
    run_id = submit(outage.db, AGENTS / "reruns.yaml", "sync and charge", outage.env)
    outage.start_first(hold="sync_slow")
    await outage.started("call_1_0")

    async with Runtime(outage.db) as rt:
        before = await rt.events(run_id)
        assert of(before, ToolFinished, tool="save_note")
        assert of(before, ToolStarted, tool="sync_slow") and not of(
            before, ToolFinished, tool="sync_slow"
        )
        await outage.kill_and_recover(rt, run_id)
        result = await rt.result(run_id)
        events = await rt.events(run_id)
        await assert_every_decision_is_chained_once(rt, run_id)

    assert result.status == "succeeded" and result.output == "synced and charged"
    assert len(of(events, RunResumed)) == 1
    first, second = effects(outage.folder, "sync_slow")
    assert first["key"] == second["key"] == f"{run_id}:call_1_0"  # the partner dedups on it
    assert (first["attempt"], second["attempt"]) == (1, 2)
    assert len(effects(outage.folder, "save_note")) == 1
    assert len(effects(outage.folder, "charge")) == 1


# -- killed between steps: inside a model call ------------------------------------------


class HeldModel:
    """An OpenAI-compatible chat endpoint that plays a script by turn (the number of
    assistant messages in the request) and holds the first request for `hold_turn`
    open, so the worker can be killed while it waits for the model."""

    def __init__(self, script: list[dict[str, Any]], hold_turn: int):
        self.turns_seen: list[int] = []
        self.holding = threading.Event()
        self.release = threading.Event()
        model = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                turn = sum(1 for m in body["messages"] if m["role"] == "assistant")
                first_time = turn not in model.turns_seen
                model.turns_seen.append(turn)
                if turn == hold_turn and first_time:
                    model.holding.set()
                    model.release.wait(DEADLINE * 2)
                    return
                data = json.dumps(_completion(script[turn])).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def _completion(turn: dict[str, Any]) -> dict[str, Any]:
    calls = [
        {
            "id": f"c{i}_{name}",
            "type": "function",
            "function": {"name": name, "arguments": json.dumps(args)},
        }
        for i, (name, args) in enumerate(turn.get("calls", []))
    ]
    message: dict[str, Any] = {"role": "assistant", "content": turn.get("content")}
    if calls:
        message["tool_calls"] = calls
    return {
        "id": "chatcmpl-recovery",
        "object": "chat.completion",
        "created": 0,
        "model": "held-model",
        "choices": [
            {"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}
        ],
        "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25},
    }


@pytest.fixture
def held_model():
    model = HeldModel(
        [
            {"calls": [("save_note", {"text": "step one"}), ("charge", {"amount": 3.0})]},
            {"calls": [("lookup", {"ref": "A-1"})]},
            {"content": "all done"},
        ],
        hold_turn=1,
    )
    yield model
    model.close()


async def test_sigkill_between_steps_repeats_only_the_model_call(outage, held_model):
    """Killed after step 0's effects were committed, while waiting for the model's next
    answer: the only thing done twice is that model call."""
    agent = Agent(
        name="recovery-between",
        model={
            "provider": "openai",
            "name": "held-model",
            "base_url": held_model.url,
            "api_key_env": "RECOVERY_UNUSED_KEY",
            "max_retries": 0,
            "timeout": DEADLINE * 2,
        },
        tools=[tool_ref("save_note"), tool_ref("charge"), tool_ref("lookup")],
    )
    async with Runtime(outage.db) as rt:
        run_id = await rt.submit(agent, "note, charge, look up")
        outage.start_first()
        await wait_until(
            "worker 1 to ask the model for turn 1", held_model.holding.is_set, outage.log
        )
        before = await rt.events(run_id)
        assert [e.tool for e in of(before, ToolFinished)] == ["save_note", "charge"]
        assert not of(before, ModelResponded, step=1)  # in flight, not journaled
        await outage.kill_and_recover(rt, run_id)
        result = await rt.result(run_id)
        events = await rt.events(run_id)
        await assert_every_decision_is_chained_once(rt, run_id)

    assert result.status == "succeeded" and result.output == "all done"
    assert held_model.turns_seen == [0, 1, 1, 2]  # turn 1 asked twice, nothing else repeated
    assert of(events, RunResumed)
    for tool in ("save_note", "charge", "lookup"):
        assert len(effects(outage.folder, tool)) == 1, tool


@pytest.fixture
def held_after_read():
    model = HeldModel(
        [
            {"calls": [("save_note", {"text": "step one"}), ("lookup", {"ref": "A-1"})]},
            {"content": "all done"},
        ],
        hold_turn=1,
    )
    yield model
    model.close()


async def test_sigkill_before_a_reads_result_is_committed_runs_only_the_read_again(
    outage, held_after_read
):
    """An idempotent read's result goes with the next commit (one commit a step): killed
    while the model is asked for the next turn, the read's result is not in the journal.
    Recovery runs the read again with the same idempotency key; the write before it, which
    committed its own result, is not repeated."""
    agent = Agent(
        name="recovery-read-deferred",
        model={
            "provider": "openai",
            "name": "held-model",
            "base_url": held_after_read.url,
            "api_key_env": "RECOVERY_UNUSED_KEY",
            "max_retries": 0,
            "timeout": DEADLINE * 2,
        },
        tools=[tool_ref("save_note"), tool_ref("lookup")],
    )
    async with Runtime(outage.db) as rt:
        run_id = await rt.submit(agent, "note, then look up")
        outage.start_first()
        await wait_until(
            "worker 1 to ask the model for turn 1", held_after_read.holding.is_set, outage.log
        )
        before = await rt.events(run_id)
        assert [e.tool for e in of(before, ToolFinished)] == ["save_note"]  # the write's own
        assert of(before, ToolStarted, tool="lookup")  # the read ran; its result is pending
        await outage.kill_and_recover(rt, run_id)
        result = await rt.result(run_id)
        events = await rt.events(run_id)

    assert result.status == "succeeded" and result.output == "all done"
    assert held_after_read.turns_seen == [0, 1, 1]
    assert len(effects(outage.folder, "save_note")) == 1
    reads = effects(outage.folder, "lookup")
    assert len(reads) == 2 and reads[0]["key"] == reads[1]["key"]  # the same call, again
    assert len(of(events, ToolFinished, tool="lookup")) == 1


# -- the agent's code changes while the run is down --------------------------------------


@pytest.fixture
def project(tmp_path) -> Path:
    """A copy of the agents folder that the test may edit."""
    folder = tmp_path / "project"
    shutil.copytree(AGENTS, folder, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def _edit_tools(project: Path, old: str, new: str) -> None:
    path = project / TOOLS.name
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_tool_code_changed_during_an_outage_never_reruns_completed_calls(outage, project):
    """Recovery replays recorded results, not code: the step that finished under the old
    code is not run again. Calls made after the restart run the code now at the pinned
    reference, under the pinned declaration (effect, idempotency, timeout)."""
    run_id = submit(outage.db, project / "reruns.yaml", "sync and charge", outage.env)
    outage.start_first(hold="sync_slow")
    await outage.started("call_1_0")
    _edit_tools(project, 'CODE_VERSION = "v1"', 'CODE_VERSION = "v2"')

    async with Runtime(outage.db) as rt:
        version = (await rt.get_run(run_id)).agent_version
        await outage.kill_and_recover(rt, run_id)
        run = await rt.get_run(run_id)
        await assert_every_decision_is_chained_once(rt, run_id)
        events = await rt.events(run_id)

    assert run.status == "succeeded" and run.agent_version == version
    assert [e["code"] for e in effects(outage.folder, "save_note")] == ["v1"]
    [note] = of(events, ToolFinished, tool="save_note")
    assert note.result["code"] == "v1"  # replayed to the model as recorded
    assert [e["code"] for e in effects(outage.folder, "sync_slow")] == ["v1", "v2"]
    assert [e["code"] for e in effects(outage.folder, "charge")] == ["v2"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_pinned_tool_that_can_no_longer_be_imported_parks_the_run(outage, project):
    run_id = submit(outage.db, project / "reruns.yaml", "sync and charge", outage.env)
    outage.start_first(hold="sync_slow")
    await outage.started("call_1_0")
    _edit_tools(project, "async def charge(", "async def charge_card(")  # renamed away

    async with Runtime(outage.db) as rt:
        version = (await rt.get_run(run_id)).agent_version
        await outage.kill_and_recover(rt, run_id)
        run = await rt.get_run(run_id)
        await assert_every_decision_is_chained_once(rt, run_id)
        events = await rt.events(run_id)

    assert run.status == "needs_attention"
    [parked] = of(events, RunNeedsAttention)
    assert parked.call_id == "call_2_0"
    assert f"tool charge of pinned version {version} cannot be loaded" in parked.reason
    assert len(effects(outage.folder, "sync_slow")) == 2  # still importable: re-run, same key
    assert effects(outage.folder, "charge") == []


async def test_a_call_queued_for_a_tool_thread_at_sigkill_runs_after_recovery_not_parked(
    outage,
):
    """Two charges on a one-thread pool: the first holds the thread when the worker dies, the
    second was waiting for it. Only the first had started: it parks; the second had not, so
    it runs once after recovery instead of being parked as "may have happened"."""
    first = submit(outage.db, AGENTS / "queued.yaml", "charge A", outage.env)
    second = submit(outage.db, AGENTS / "queued.yaml", "charge B", outage.env)
    outage.first = start_worker(
        outage.db,
        worker_env(outage.folder, RECOVERY_HOLD="charge_sync"),
        outage.log,
        extra=["--tool-threads", "1"],
    )
    await outage.started("call_1_0")  # one charge holds the only thread

    async with Runtime(outage.db) as rt:

        async def both_queued_behind_it() -> bool:
            notes = [
                of(await rt.events(r), ToolFinished, tool="save_note") for r in (first, second)
            ]
            return all(notes)

        await wait_until("both runs to reach their charge", both_queued_behind_it, outage.log)
        started = {
            r: bool(of(await rt.events(r), ToolStarted, tool="charge_sync"))
            for r in (first, second)
        }
        assert sorted(started.values()) == [False, True]  # the queued one has not started
        holder = next(r for r, s in started.items() if s)
        queued = next(r for r, s in started.items() if not s)
        sigkill(outage.first)
        for run_id in (first, second):
            await wait_for_lease_expiry(rt, run_id, outage.log)
        finish_worker(
            start_worker(outage.db, outage.env, outage.log, exit_when_idle=True), outage.log
        )
        held, waited = await rt.get_run(holder), await rt.get_run(queued)

    assert held.status == "needs_attention"
    assert waited.status == "succeeded", waited.reason
    charges = effects(outage.folder, "charge_sync")
    assert sorted(c["key"].split(":")[0] for c in charges) == sorted([holder, queued])
