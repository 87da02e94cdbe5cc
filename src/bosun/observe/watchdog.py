"""Stuck-run detection: no progress, repeating call patterns, abnormal spend.

    dog = Watchdog(rt.store, WatchdogConfig(no_progress_after=300), alerts=[LogAlerts()],
                   runtime=rt, metrics=metrics)
    await dog.run(stop)        # or: findings = await dog.check()

Each pass looks at every `running` run in the database (so one watchdog covers all workers):

- `no_progress`: nothing journaled for `no_progress_after` seconds (a hung tool, a dead
  worker whose lease has not expired, a model that never answers).
- `repeating`: the last tool calls are one pattern of 1, 2 or 3 calls (same tools, same
  arguments) repeated `repeat_times` times in a row: A A A, A B A B A B, A B C A B C A B C.
- `overspending`: the run's spend per model step is more than `spend_factor` times the
  median of its agent's recent finished runs (at least `min_history` of them), or more than
  `max_cost_per_step` if set.

A finding is stored once (`findings` table: run, kind, position), counted in
`bosun_watchdog_findings_total`, sent to the alert sinks, and journaled as `RunFlagged`
through the runtime's journal writer (so traces, metrics and the console see it) when that
is safe for lease fencing: added to the run's own step buffer when this process
drives the run (committed with its next step), or appended under a short lease when no live
worker holds the run. With `pause=True` the run is also asked to pause at its next step
boundary (`request_pause`: status `paused`, lease released; `bosun unpause` continues it
from its journal, `bosun cancel` ends it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from bosun.engine.journal import JournalWriter
from bosun.journal.events import RunFlagged, ToolProposed
from bosun.journal.redact import Redactor
from bosun.observe.alerts import AlertSink
from bosun.store.base import RUNNING, SUCCEEDED, RunRecord, RunSummary, Store
from bosun.store.observing import Finding

log = logging.getLogger("bosun.watchdog")


@dataclass(slots=True)
class WatchdogConfig:
    no_progress_after: float = 300.0
    repeat_times: int = 3
    spend_factor: float = 5.0
    min_history: int = 3
    max_cost_per_step: float | None = None
    min_cost: float = 0.0  # never flag spend below this (USD)
    pause: bool = False
    interval: float = 30.0
    max_runs: int = 10_000


@dataclass(slots=True)
class _Seen:
    after_seq: int = 0
    last_ts: float = 0.0  # when the run last journaled anything
    calls: list[tuple[str, str]] = field(default_factory=list)


def repeating_pattern(calls: list[tuple[str, str]], times: int) -> list[tuple[str, str]] | None:
    """The shortest pattern of 1-3 calls that the tail of `calls` repeats `times` times."""
    for period in (1, 2, 3):
        n = period * times
        if len(calls) < n:
            return None
        tail = calls[-n:]
        pattern = tail[-period:]
        if all(tail[i] == pattern[i % period] for i in range(n)):
            return pattern
    return None


class Watchdog:
    def __init__(
        self,
        store: Store,
        config: WatchdogConfig | None = None,
        *,
        alerts: list[AlertSink] | None = None,
        metrics: Any = None,
        runtime: Any = None,
        owner: str = "bosun-watchdog",
    ):
        self.store = store
        self.config = config or WatchdogConfig()
        self.alerts = list(alerts or [])
        self.metrics = metrics
        self.runtime = runtime
        # The runtime's writer, so its listeners (traces, metrics, the console) see findings.
        self.journal: JournalWriter = (
            runtime.journal if runtime is not None else JournalWriter(store)
        )
        self.owner = owner
        self._seen: dict[str, _Seen] = {}
        self._baselines: dict[str, tuple[float, float | None]] = {}  # agent -> (at, rate)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.check()
            except Exception:
                log.exception("watchdog pass failed; trying again in %ss", self.config.interval)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.config.interval)

    async def check(self, now: float | None = None) -> list[Finding]:
        """One pass over the running runs; returns the findings that are new."""
        now = now or time.time()
        runs = await self.store.list_runs(status=RUNNING, limit=self.config.max_runs)
        live = {r.id for r in runs}
        for gone in set(self._seen) - live:
            del self._seen[gone]
        new: list[Finding] = []
        for run in runs:
            for kind, detail, at_seq in await self._inspect(run, now):
                finding = Finding(run.id, kind, detail, at_seq, now, run.agent, run.tenant)
                if await self.store.record_finding(finding):
                    new.append(finding)
                    await self._report(run, finding)
        return new

    async def _inspect(self, run: RunRecord, now: float) -> list[tuple[str, str, int]]:
        c = self.config
        found: list[tuple[str, str, int]] = []
        seen = self._seen.setdefault(run.id, _Seen())
        for seq, event in await self.store.events(run.id, after_seq=seen.after_seq):
            seen.after_seq, seen.last_ts = seq, event.ts
            if isinstance(event, ToolProposed):
                seen.calls.append((event.tool, event.arguments))
        idle = now - (seen.last_ts or run.updated_at)
        if idle >= c.no_progress_after:
            found.append(
                (
                    "no_progress",
                    f"no progress for {idle:.0f}s (at event {seen.after_seq})",
                    seen.after_seq,
                )
            )
        del seen.calls[: -3 * c.repeat_times]
        pattern = repeating_pattern(seen.calls, c.repeat_times)
        if pattern is not None:
            # The finding is journaled, logged and sent to webhooks: arguments as people see them.
            redactor = Redactor.for_run(run.spec)
            shown = " -> ".join(
                f"{tool}({redactor.arguments(tool, args)})" for tool, args in pattern
            )
            found.append(("repeating", f"{shown} repeated {c.repeat_times} times in a row", 0))
        if run.steps and run.cost > c.min_cost:
            per_step = run.cost / run.steps
            limit = c.max_cost_per_step
            baseline = await self._baseline(run.agent, now)
            if baseline is not None and (limit is None or baseline * c.spend_factor < limit):
                limit = baseline * c.spend_factor
            if limit is not None and per_step > limit:
                why = (
                    f"{c.spend_factor:g}x the agent's median ${baseline:.6f}/step"
                    if baseline is not None and limit == baseline * c.spend_factor
                    else "the configured maximum"
                )
                found.append(
                    ("overspending", f"spending ${per_step:.6f}/step, over {why} (${limit:.6f})", 0)
                )
        return found

    async def _baseline(self, agent: str, now: float) -> float | None:
        """Median USD per step of the agent's recent successful runs (cached a minute)."""
        cached = self._baselines.get(agent)
        if cached is not None and now - cached[0] < 60:
            return cached[1]
        recent = await self.store.list_runs(status=SUCCEEDED, agent=agent, limit=50)
        rates = [r.cost / r.steps for r in recent if r.steps]
        rate = statistics.median(rates) if len(rates) >= self.config.min_history else None
        self._baselines[agent] = (now, rate)
        return rate

    async def _report(self, run: RunRecord, finding: Finding) -> None:
        if self.metrics is not None:
            self.metrics.findings.labels(finding.agent, finding.kind).inc()
        paused = False
        if self.config.pause:
            paused = await self.store.request_pause(run.id)
        event = RunFlagged(finding=finding.kind, detail=finding.detail, paused=paused)
        try:
            journaled = await self._journal(run, event)
        except Exception:
            log.exception("watchdog: could not journal the finding on run %s", run.id)
            journaled = False
        if not journaled:
            log.info("run %s is driven by another live worker: finding kept in `findings`", run.id)
        for sink in self.alerts:
            try:
                await sink.send(finding)
            except Exception:
                log.exception("alert sink %r failed", sink)

    async def _journal(self, run: RunRecord, event: RunFlagged) -> bool:
        """Journal without breaking lease fencing (see the module docstring)."""
        loops = getattr(self.runtime, "_loops", None) or {}
        loop = loops.get(run.id)
        if loop is not None:  # ours: buffered, committed with the run's next step
            loop.record(event)
            return True
        held = await self.store.acquire(run.id, self.owner, lease_seconds=10)
        if held is None:
            return False
        try:
            await self.journal.append(
                run.id,
                [event],
                first_seq=held.last_seq + 1,
                owner=self.owner,
                summary=RunSummary(
                    status=held.status,
                    steps=held.steps,
                    tool_calls=held.tool_calls,
                    input_tokens=held.input_tokens,
                    output_tokens=held.output_tokens,
                    cost=held.cost,
                    reason=held.reason,
                    output=held.output,
                    finished_at=held.finished_at,
                ),
            )
        finally:
            await self.store.release(run.id, self.owner)
        return True
