"""A2A push deliveries: observe the tasks that have webhooks, queue each state change in
the store's outbox, and POST what is owed, with retries.

Two loops in one task per server (`PushDispatcher.run`):

1. **Observe.** For every config whose task has not been seen to end, project the task
   (`tasks.build_task`, the one projection) and, when its state differs from the one last
   recorded, write a delivery row with the `statusUpdate` to send, in the same
   transaction that moves the config on (`record_push_state`, conditional: two servers
   record a change once). A JournalWriter listener wakes the loop at once for runs this
   process drives; runs driven elsewhere are seen within `interval`. A state held for
   less than one observation (a run that goes from working to completed within a step)
   may be reported only as the later one; states a task parks in (input-required) and
   its end always are.
2. **Send.** Due rows (the oldest owed to each webhook, so states arrive in order) are claimed (one sender across servers), checked against the SSRF
   rule (`push.delivery_refusal`), signed and POSTed. A 2xx marks the row `delivered`;
   anything else is retried after `backoff * 2**(attempt-1)` seconds (at most
   `max_delay`), and after `attempts` tries the row is `failed` (logged, counted in
   `bosun_a2a_push_deliveries_total`).

The outbox is what survives restarts: a change observed before a crash is sent after it;
a change not yet observed is observed afresh (the task's state is in the store).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import uuid
from collections.abc import Sequence
from typing import Any

import httpx
from a2a.types import a2a_pb2 as pb
from google.protobuf import json_format

from bosun.journal.events import Event
from bosun.server import ops
from bosun.server.a2a import push, tasks
from bosun.server.keys import Principal
from bosun.server.state import ServerState
from bosun.spec.a2a import A2ASettings
from bosun.spec.vocab import PushStatus
from bosun.store.push import PushConfig, PushDelivery

log = logging.getLogger("bosun.server.a2a.push")
BATCH = 100


def _key(config: PushConfig) -> tuple[str, str, str]:
    return (config.tenant, config.task_id, config.id)


class PushDispatcher:
    def __init__(
        self,
        state: ServerState,
        *,
        allow_loopback: bool = False,
        interval: float = 0.5,
        attempts: int = 6,
        backoff: float = 1.0,
        max_delay: float = 60.0,
        timeout: float = 10.0,
    ):
        self.state = state
        self.store = state.runtime.store
        self.allow_loopback = allow_loopback
        self.interval = interval
        self.attempts = attempts
        self.backoff = backoff
        self.max_delay = max_delay
        self.timeout = timeout
        self.watched: dict[str, list[PushConfig]] = {}  # task id -> its active configs
        self._dirty: set[str] = set()  # watched tasks this process committed events to
        self._swept = 0.0  # when every active config was last observed
        self._seen: dict[tuple[str, str, str], tuple[str, int, float]] = {}
        self._wake = asyncio.Event()
        self.counts: Any = None  # a prometheus Counter by outcome, when metrics are on
        if state.metrics is not None:
            from prometheus_client import Counter

            self.counts = Counter(
                "bosun_a2a_push_deliveries",
                "A2A push delivery attempts, by outcome (delivered, retried, failed, refused)",
                ["outcome"],
                registry=state.metrics.registry,
            )

    # -- waking -------------------------------------------------------------------------

    def listener(self, run_id: str, first_seq: int, events: Sequence[Event]) -> None:
        """A `CommitListener`: a set lookup per commit, nothing more for unwatched runs."""
        if run_id in self.watched:
            self._dirty.add(run_id)
            self._wake.set()

    def poke(self) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as http:
            while not stop.is_set():
                self._wake.clear()
                try:
                    await self.observe()
                    await self.send_due(http)
                except Exception:  # a store outage: try again next round
                    log.exception("A2A push round failed; retrying")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.interval)

    # -- observing ----------------------------------------------------------------------

    async def observe(self) -> None:
        """Every active config each `interval` (runs driven elsewhere, configs made on other
        servers); between sweeps, only the tasks this process just committed events to."""
        now = time.monotonic()
        if now - self._swept < self.interval:
            dirty, self._dirty = self._dirty, set()
            for task_id in dirty:
                for config in self.watched.get(task_id, ()):
                    await self.observe_config(config)
            return
        self._swept = now
        self._dirty.clear()
        configs = await self.store.active_push_configs(10_000)
        watched: dict[str, list[PushConfig]] = {}
        for config in configs:
            watched.setdefault(config.task_id, []).append(config)
        self.watched = watched
        keys = {_key(c) for c in configs}
        for key in [k for k in self._seen if k not in keys]:
            del self._seen[key]  # its task ended, or the config went
        for config in configs:
            await self.observe_config(config)

    async def observe_config(self, config: PushConfig, *, force: bool = False) -> None:
        """Record the task's state for `config` if it changed since last recorded."""
        run = await self.store.get_run(config.task_id)
        if run is None or run.tenant != config.tenant:
            return
        mark = (str(run.status), run.last_seq, run.updated_at or 0.0)
        key = _key(config)
        if not force and self._seen.get(key) == mark:
            return
        waits = await self.store.waits(run.id)
        # The state from the row and the waits (a run's journal holds more than RunStarted
        # once a worker took it): the journal is read only when the state changed.
        cheap = pb.TaskState.Name(tasks.state_of(run, waits, run.last_seq > 1))
        if not force and cheap == config.last_state:
            self._seen[key] = mark
            return
        agent = self.state.agents.get(run.agent)
        mode = ((agent.a2a if agent else None) or A2ASettings()).answer
        viewer = Principal(
            key_id="a2a-push", tenant=config.tenant, role="viewer", name="A2A push observer"
        )
        shown, events = await ops.events(self.state, viewer, run.id)
        task = tasks.build_task(shown, events, waits, mode, artifacts=False)
        state = pb.TaskState.Name(task.status.state)
        self._seen[key] = mark
        if state == config.last_state:
            return
        update = pb.TaskStatusUpdateEvent(
            task_id=task.id, context_id=task.context_id, status=task.status
        )
        body = json_format.MessageToJson(pb.StreamResponse(status_update=update), indent=None)
        now = time.time()
        delivery = PushDelivery(
            id=str(uuid.uuid4()),
            tenant=config.tenant,
            task_id=config.task_id,
            config_id=config.id,
            state=state,
            seq=run.last_seq,
            body=body,
            next_at=now,
            created_at=now,
        )
        ended = task.status.state in tasks.TERMINAL
        if await self.store.record_push_state(config, delivery, active=not ended):
            # What the store now holds, for observations before the next sweep.
            moved = dataclasses.replace(config, last_state=state, last_seq=run.last_seq)
            self.watched[config.task_id] = [
                moved if c.id == config.id else c for c in self.watched.get(config.task_id, [])
            ]

    # -- sending ------------------------------------------------------------------------

    async def send_due(self, http: httpx.AsyncClient) -> None:
        due = await self.store.due_push_deliveries(time.time(), BATCH)
        claimed = []
        for delivery in due:
            if await self.store.claim_push_delivery(delivery, time.time() + self.timeout + 5):
                claimed.append(delivery)
        if claimed:
            await asyncio.gather(*(self._send(http, d) for d in claimed))

    def _count(self, outcome: str) -> None:
        if self.counts is not None:
            self.counts.labels(outcome=outcome).inc()

    async def _send(self, http: httpx.AsyncClient, delivery: PushDelivery) -> None:
        config = await self.store.push_config(delivery.tenant, delivery.task_id, delivery.config_id)
        where = f"task {delivery.task_id} config {delivery.config_id}"
        if config is None:  # deleted meanwhile: nothing more is sent to it
            await self._finish(delivery, PushStatus.FAILED, 0.0, "the config was deleted")
            return
        refused = await push.delivery_refusal(config.url, allow_loopback=self.allow_loopback)
        if refused is not None:
            log.warning("A2A push for %s not sent: %s", where, refused)
            self._count("refused")
            await self._finish(delivery, PushStatus.FAILED, 0.0, refused)
            return
        body = delivery.body.encode()
        headers = {"Content-Type": "application/a2a+json"}
        if config.token:
            headers[push.TOKEN_HEADER] = config.token
            headers[push.SIGNATURE_HEADER] = push.sign(config.token, body)
        if config.auth_scheme and config.auth_credentials:
            headers["Authorization"] = f"{config.auth_scheme} {config.auth_credentials}"
        attempt = delivery.attempts + 1  # the claim counted it
        try:
            response = await http.post(config.url, content=body, headers=headers)
            error = None if response.is_success else f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}".rstrip(": ")
        if error is None:
            self._count("delivered")
            await self._finish(delivery, PushStatus.DELIVERED, 0.0, None)
            return
        if attempt >= self.attempts:
            log.warning("A2A push for %s failed after %d attempts: %s", where, attempt, error)
            self._count("failed")
            await self._finish(delivery, PushStatus.FAILED, 0.0, error)
            return
        delay = min(self.backoff * 2 ** (attempt - 1), self.max_delay)
        self._count("retried")
        await self._finish(delivery, PushStatus.PENDING, time.time() + delay, error)

    async def _finish(
        self, delivery: PushDelivery, status: PushStatus, next_at: float, error: str | None
    ) -> None:
        await self.store.finish_push_delivery(delivery.id, status, next_at, error)
        if status is PushStatus.PENDING:
            self._wake_at(next_at)

    def _wake_at(self, when: float) -> None:
        loop = asyncio.get_running_loop()
        loop.call_later(max(0.0, when - time.time()), self._wake.set)
