"""Helpers for the crash-recovery tests: agents over `agents/recovery_tools.py`, the
effects log those tools write, crash injection at exact points, and subprocess workers.

Crash injection in-process, at the exact point a test names:

- inside a tool: `RECOVERY_CRASH=<tool>` makes it raise `SimulatedCrash` (after its effect);
- inside a model call: `ObservedRuntime(crash_on_turn=N)`;
- right after a commit: `crash_after(EventType)`, a commit listener (listeners run after
  the store has committed the batch, so the journal holds exactly that much).

`SimulatedCrash` is a BaseException the engine does not catch, so nothing more is
journaled after it, as if the process had died. The runtime's `finally` still drops the
lease, which only saves the test waiting for it to expire; the journal is what a dead
process leaves behind.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bosun import Agent, Runtime
from bosun.journal.events import Event
from bosun.models.base import ModelProvider, ModelRequest, ModelResponse
from bosun.spec.refs import load_module

AGENTS = Path(__file__).parent / "agents"
TOOLS = AGENTS / "recovery_tools.py"

SimulatedCrash: type[BaseException] = load_module(str(TOOLS)).SimulatedCrash


def tool_ref(name: str, tools_file: Path = TOOLS) -> str:
    return f"{tools_file}:{name}"


def scripted_agent(
    name: str, *turns: dict[str, Any], tools: Sequence[str], **options: Any
) -> Agent:
    """An agent whose scripted model plays `turns`, with tools from recovery_tools.py."""
    return Agent(
        name=name,
        model={"provider": "scripted", "turns": list(turns)},
        tools=[tool_ref(t) for t in tools],
        **options,
    )


def calls(*pairs: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    """One model turn proposing these (tool, arguments) calls."""
    return {"tool_calls": [{"name": n, "arguments": a} for n, a in pairs]}


def effects(folder: Path | str, tool: str | None = None) -> list[dict[str, Any]]:
    """Every execution the tools recorded, in order (optionally of one tool)."""
    path = Path(folder) / "effects.jsonl"
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [e for e in lines if tool is None or e["tool"] == tool]


def of(events: list[tuple[int, Event]], kind: type[Event], **match: Any) -> list[Any]:
    """The events of one type whose fields equal `match`."""
    return [
        e
        for _, e in events
        if isinstance(e, kind) and all(getattr(e, k) == v for k, v in match.items())
    ]


# -- in-process crash injection ---------------------------------------------------------


class RecordingProvider:
    """Wraps the agent's provider: records every request, optionally dies on one turn."""

    def __init__(self, inner: ModelProvider, log: list[ModelRequest], crash_on_turn: int | None):
        self.inner = inner
        self.provider = inner.provider
        self.model = inner.model
        self.log = log
        self.crash_on_turn = crash_on_turn

    async def complete(self, request: ModelRequest) -> ModelResponse:
        self.log.append(request)
        if request.turn == self.crash_on_turn:
            raise SimulatedCrash(f"process died while the model was answering turn {request.turn}")
        return await self.inner.complete(request)


class ObservedRuntime(Runtime):
    """A Runtime that records the model requests it makes (and can die inside one)."""

    def __init__(self, *args: Any, crash_on_turn: int | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.requests: list[ModelRequest] = []
        self.crash_on_turn = crash_on_turn

    def provider_for(self, agent: Agent) -> ModelProvider:
        return RecordingProvider(super().provider_for(agent), self.requests, self.crash_on_turn)

    @property
    def turns(self) -> list[int]:
        return [r.turn for r in self.requests]


def crash_after(kind: type[Event], **match: Any) -> Callable[[str, int, Sequence[Event]], None]:
    """A commit listener that kills the run right after the first commit holding `kind`."""
    fired = False

    def listener(run_id: str, first_seq: int, events: Sequence[Event]) -> None:
        nonlocal fired
        hit = any(
            isinstance(e, kind) and all(getattr(e, k) == v for k, v in match.items())
            for e in events
        )
        if hit and not fired:
            fired = True
            raise SimulatedCrash(f"process died right after committing {kind.kind}")

    return listener


# -- subprocess workers -----------------------------------------------------------------

DEADLINE = 60.0  # generous bound for anything a test waits on; never part of an assertion


def worker_env(effects_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECOVERY_")}
    env["RECOVERY_EFFECTS_DIR"] = str(effects_dir)
    env.update(extra)
    return env


def start_worker(
    db: str,
    env: dict[str, str],
    log: Path,
    *,
    exit_when_idle: bool = False,
    extra: Sequence[str] = (),
) -> subprocess.Popen[bytes]:
    args = [
        sys.executable,
        "-m",
        "bosun",
        "worker",
        "--db",
        db,
        "--lease-seconds",
        "1",
        "--poll-interval",
        "0.1",
        "--concurrency",
        "4",
    ]
    if exit_when_idle:
        args.append("--exit-when-idle")
    args.extend(extra)
    with open(log, "ab") as out:
        return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)


def bosun_cli(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "bosun", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert done.returncode == 0, f"bosun {' '.join(args)} failed:\n{done.stdout}{done.stderr}"
    return done.stdout


def submit(db: str, agent_file: Path, text: str, env: dict[str, str]) -> str:
    out = bosun_cli("submit", str(agent_file), "--input", text, "--db", db, "--json", env=env)
    return json.loads(out)["run_id"]


async def wait_until(what: str, check: Callable[[], Any], log: Path | None = None) -> Any:
    """Poll `check` until it returns something truthy; fail after DEADLINE seconds."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        await asyncio.sleep(0.05)
    details = f"\nworker log:\n{log.read_text()}" if log is not None and log.exists() else ""
    raise AssertionError(f"gave up after {DEADLINE}s waiting for {what}{details}")


def sigkill(proc: subprocess.Popen[bytes]) -> None:
    os.kill(proc.pid, 9)
    assert proc.wait(timeout=DEADLINE) == -9


async def wait_for_lease_expiry(rt: Runtime, run_id: str, log: Path | None = None) -> None:
    """A killed worker's lease runs out on its own; wait for that before starting the next
    worker (an `--exit-when-idle` worker that starts earlier finds nothing and exits)."""

    async def expired() -> bool:
        run = await rt.get_run(run_id)
        return run.lease_expires_at is None or run.lease_expires_at < time.time()

    await wait_until(f"the lease on {run_id} to expire", expired, log)


def finish_worker(proc: subprocess.Popen[bytes], log: Path) -> None:
    try:
        code = proc.wait(timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(
            f"worker still running after {DEADLINE}s:\n{log.read_text()}"
        ) from None
    assert code == 0, f"worker exited {code}:\n{log.read_text()}"
