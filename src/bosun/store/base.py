"""The Store interfaces: what the runtime needs from a database, and nothing more, split by
concern so that a reader (or a test double of one concern) sees one screen at a time:

- `RunStore`: runs, their journals and leases (the engine and workers).
- `GovernanceStore`: approvals, kill switches, rate counters, breakers, spend, audit chain.
- `AccessStore`: API keys and console sessions (the server).
- `ObserveStore`: usage rows, the metrics snapshot, watchdog findings (the observe layer).
- `WaitStore`: durable waits and signals (the engine's waits; approvals are waits too).

`Store` is all of them; it is what everyone imports and what both backends
(`bosun.store.sqlite`, `bosun.store.postgres`) implement, tested by one contract suite
(`tests/store/test_contract.py`). The records live in `bosun.store.records` and are
re-exported here so older imports keep working.

The journal (`events`) is append-only; the `runs` row is a summary projection plus the
queue and lease columns. Reads of a run always agree with its journal: PostgreSQL updates
the row in the events' transaction; SQLite only when the status changes, and adds the
journal's tail to the row's totals when it reads them (see `bosun.store.sqlite`).
"""

from __future__ import annotations

import abc
from collections.abc import Collection, Sequence
from typing import Any

from bosun.journal.audit import AuditEntry
from bosun.journal.events import Event
from bosun.store.artifacts import ArtifactStore
from bosun.store.push import PushStore
from bosun.store.records import *  # noqa: F403 -- the records, re-exported (see the docstring)
from bosun.store.records import (
    PENDING,
    ApiKey,
    AppendResult,
    ApprovalRecord,
    AuditHead,
    AuditRecord,
    Breaker,
    ConsoleSession,
    Feedback,
    Finding,
    GcReport,
    KillSwitch,
    MetricsSnapshot,
    RunRecord,
    RunSummary,
    UsageRow,
)
from bosun.store.triggers import TriggerStore
from bosun.store.waits_rows import WaitRecord


class RunStore(abc.ABC):
    """Runs, their journals and their leases: what the engine and workers need.

    `open`/`close` live here because every store is at least a run store."""

    url: str

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and create the schema if it is missing."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    async def __aenter__(self) -> Store:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @abc.abstractmethod
    async def create_run(self, run: RunRecord, events: Sequence[Event]) -> RunRecord:
        """Insert the run row and its first events (seq 1..n) in one transaction, and return
        it; a run without a root is its own root.

        When `run.idempotency_key` is set and its tenant already has a run with that key,
        nothing is written and that run is returned instead: triggers and webhooks retry,
        and a retry must never start a second run. Race-safe: of two concurrent creates
        with one key, one inserts and the other gets its run."""

    @abc.abstractmethod
    async def append(
        self,
        run_id: str,
        events: Sequence[Event],
        *,
        first_seq: int,
        owner: str,
        summary: RunSummary,
    ) -> AppendResult:
        """Append events as seq first_seq.. and update the summary, atomically.

        Fenced by the lease: raises `LeaseLost` (writing nothing) unless `owner`
        holds the run. Returns whether a cancel has been requested, so the
        engine learns of it at the next step boundary without another query.
        """

    @abc.abstractmethod
    async def events(self, run_id: str, after_seq: int = 0) -> list[tuple[int, Event]]:
        """The run's events in order, as (seq, event); large payloads already resolved."""

    @abc.abstractmethod
    async def get_run(self, run_id: str) -> RunRecord | None: ...

    @abc.abstractmethod
    async def list_runs(
        self,
        *,
        status: str | None = None,
        agent: str | None = None,
        limit: int = 50,
        tenant: str | None = None,
        user: str | None = None,
        tag: tuple[str, str] | None = None,
        since: float | None = None,
        until: float | None = None,
        offset: int = 0,
        parent_id: str | None = None,
        root_id: str | None = None,
    ) -> list[RunRecord]:
        """Newest first. Every filter left as None matches all (the CLI sees every tenant;
        the HTTP API always passes the caller's `tenant`). `since`/`until` bound `created_at`
        (since inclusive, until exclusive); `tag` is one (key, value) pair; `parent_id` and
        `root_id` select a run's children and a whole run tree."""

    @abc.abstractmethod
    async def claim(self, worker: str, *, limit: int, lease_seconds: float) -> list[RunRecord]:
        """Lease up to `limit` runs that are queued, or running with an expired lease.

        Safe with many workers: a run is never handed to two live leases. Each claim counts
        in `RunRecord.claims`, which starts again at 1 when the journal grew since the
        previous claim (so the engine sees attempts that recorded nothing).
        """

    @abc.abstractmethod
    async def claim_one(
        self, worker: str, run_id: str, *, lease_seconds: float
    ) -> RunRecord | None:
        """Lease this run if it is queued, or running with no live lease; else None."""

    @abc.abstractmethod
    async def heartbeat(
        self, worker: str, run_ids: Sequence[str], lease_seconds: float
    ) -> set[str]:
        """Extend the leases `worker` still holds; returns the ids it still owns."""

    @abc.abstractmethod
    async def release(self, run_id: str, worker: str) -> None:
        """Drop the lease (the run stays in its status; a parked or finished run is not claimed)."""

    @abc.abstractmethod
    async def set_status(self, run_id: str, status: str, *, reason: str | None = None) -> None:
        """Change a non-terminal run's status (e.g. put a needs_attention run back in the queue)."""

    @abc.abstractmethod
    async def request_cancel(self, run_id: str) -> bool:
        """Ask a run to stop at its next step boundary. False if it is already finished.

        A paused run goes back to the queue, so that a worker finishes it as cancelled."""

    @abc.abstractmethod
    async def request_pause(self, run_id: str) -> bool:
        """Ask a run to pause at its next step boundary (status `paused`, lease released,
        nothing held in memory). False if it is finished or paused already."""

    @abc.abstractmethod
    async def unpause(self, run_id: str) -> bool:
        """Queue a paused run again; a worker continues it from its journal. False if the
        run is not paused."""

    @abc.abstractmethod
    async def gc(self, older_than: float, *, dry_run: bool = False) -> GcReport:
        """Delete the journals of runs finished before `older_than` (epoch seconds).

        Their `runs` rows stay as the summary; blobs no longer referenced go too, and the
        artifacts created before `older_than` that no retained run uses. `dry_run`
        reports the same numbers and deletes nothing (the work is rolled back).
        """

    # -- maintenance -----------------------------------------------------

    @abc.abstractmethod
    async def acquire(self, run_id: str, worker: str, *, lease_seconds: float) -> RunRecord | None:
        """Lease a run in any status (e.g. a finished one, to roll it back) if no live lease."""


class GovernanceStore(abc.ABC):
    """Approvals, kill switches, rate counters, circuit breakers, spend and the audit chain.

    `RunStore.append` inserts an approval row for every `ApprovalRequested` event it writes,
    and an audit record for every governance event, in the same transaction."""

    # `append` inserts an approval row for every `ApprovalRequested` event it writes,
    # and an audit record for every governance event, in the same transaction.

    @abc.abstractmethod
    async def get_approval(self, approval_id: str) -> ApprovalRecord | None: ...

    @abc.abstractmethod
    async def list_approvals(
        self,
        *,
        status: str | None = PENDING,
        tenant: str | None = None,
        run_id: str | None = None,
    ) -> list[ApprovalRecord]:
        """Oldest first."""

    @abc.abstractmethod
    async def resolve_approval(
        self,
        approval_id: str,
        *,
        decision: str,
        by: str,
        comment: str | None = None,
        arguments: str | None = None,
    ) -> ApprovalRecord:
        """Approve or deny a pending approval, exactly once (`ApprovalConflict` otherwise).

        When it was the run's last pending approval, the run goes back to the
        queue so a worker resumes it. Audited.
        """

    @abc.abstractmethod
    async def expire_approvals(self, now: float) -> list[ApprovalRecord]:
        """Resolve pending approvals past their expiry: `deny` ones become `expired`,
        `escalate` ones become `escalated` and a new pending approval for the
        `escalate_to` role replaces them. Returns the new state of each. Audited."""

    # -- governance: kill switches, quotas, spend ---------------------------

    @abc.abstractmethod
    async def set_kill_switch(self, scope: str, *, reason: str, by: str) -> KillSwitch:
        """Audited. Setting an active scope again updates its reason."""

    @abc.abstractmethod
    async def clear_kill_switch(self, scope: str, *, by: str) -> bool:
        """Audited. False if the scope was not set."""

    @abc.abstractmethod
    async def kill_switches(self) -> list[KillSwitch]: ...

    @abc.abstractmethod
    async def active_kill_switch(self, scopes: Sequence[str]) -> KillSwitch | None:
        """The first active switch among `scopes` (checked before every action)."""

    @abc.abstractmethod
    async def take_rate(self, key: str, *, limit: int, window_seconds: float) -> bool:
        """Count one use of `key` in its current fixed window; False if that exceeds `limit`.
        Shared by every process using this database."""

    # -- governance: circuit breakers of tools (see `bosun.govern.breakers`) -------

    @abc.abstractmethod
    async def breaker_failure(self, key: str, *, threshold: int) -> bool:
        """Count a failure of the tool behind `key`; open the breaker at `threshold` failures
        in a row, or at once after a failed probe. True if it is open now."""

    @abc.abstractmethod
    async def breaker_success(self, key: str) -> None:
        """The tool answered: the breaker closes and its failures are forgotten."""

    @abc.abstractmethod
    async def breaker_probe(self, key: str, *, reset_after: float) -> bool:
        """May a call go through an open breaker now? True for one caller at a time once
        `reset_after` seconds have passed since it opened (the probe), and when it is
        closed; False while it stays open."""

    @abc.abstractmethod
    async def breakers(self) -> list[Breaker]:
        """Every breaker with failures."""

    @abc.abstractmethod
    async def spend_since(
        self, since: float, *, agent: str | None = None, tenant: str | None = None
    ) -> float:
        """USD spent by runs created since `since`, for one agent and/or tenant."""

    # -- governance: audit --------------------------------------------------

    @abc.abstractmethod
    async def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        """Append records to the hash chain (kill, unkill, policy versions, rollback...)."""

    @abc.abstractmethod
    async def audit_records(
        self, after_seq: int = 0, limit: int | None = None
    ) -> list[AuditRecord]:
        """In chain order."""

    @abc.abstractmethod
    async def audit_head(self) -> AuditHead | None:
        """The head row (None if someone deleted it)."""

    @abc.abstractmethod
    async def journal_audit_counts(self) -> dict[tuple[str, str], int]:
        """(run id, action) -> how many of the run's journal events must have an audit record
        of that action (`JOURNAL_ACTIONS`): those chained already, up to the run's
        `audited_seq` on SQLite."""


class AccessStore(abc.ABC):
    """The control plane's API keys and console sessions (`bosun serve`, `bosun keys`).

    Callers audit key changes with `GovernanceStore.append_audit`."""

    @abc.abstractmethod
    async def create_api_key(self, key: ApiKey) -> None: ...

    @abc.abstractmethod
    async def get_api_key(self, key_id: str) -> ApiKey | None:
        """The key, revoked or not (callers check `revoked_at`)."""

    @abc.abstractmethod
    async def list_api_keys(self, *, tenant: str | None = None) -> list[ApiKey]:
        """Oldest first, revoked ones included."""

    @abc.abstractmethod
    async def revoke_api_key(self, key_id: str, *, now: float) -> bool:
        """False if there is no such key or it was already revoked. Its sessions end too."""

    @abc.abstractmethod
    async def touch_api_key(self, key_id: str, *, now: float) -> None:
        """Record that the key was just used (`last_used_at`)."""

    @abc.abstractmethod
    async def runs_by_tenant(self) -> dict[str, int]:
        """How many runs each tenant has (for the platform's list of tenants)."""

    @abc.abstractmethod
    async def create_console_session(self, session: ConsoleSession) -> None: ...

    @abc.abstractmethod
    async def get_console_session(self, token_hash: str, *, now: float) -> ConsoleSession | None:
        """The session if it exists and has not expired."""

    @abc.abstractmethod
    async def delete_console_session(self, token_hash: str) -> None:
        """Log out (also drops every expired session, as housekeeping)."""


class ObserveStore(abc.ABC):
    """What the observe layer reads: usage rows, the metrics snapshot, watchdog findings."""

    @abc.abstractmethod
    async def usage_rows(self, since: float, until: float | None = None) -> list[UsageRow]:
        """Every model answer journaled in [since, until), with its run's agent, tenant, user,
        session and tags; runs whose journal was removed count once, from their summary."""

    @abc.abstractmethod
    async def metrics_snapshot(self, now: float) -> MetricsSnapshot:
        """Live runs by agent and status, queue depth, approvals, kill switches (for /metrics)."""

    @abc.abstractmethod
    async def record_finding(self, finding: Finding) -> bool:
        """Store a watchdog finding; False if this (run, kind, at_seq) was already recorded."""

    @abc.abstractmethod
    async def list_findings(
        self, *, run_id: str | None = None, since: float = 0.0, limit: int = 1000
    ) -> list[Finding]:
        """Oldest first."""


class WaitStore(abc.ABC):
    """Durable waits (`sqlite/waits.py`, `postgres/waits.py`): a wait's row is created by the
    append that journals its `WaitRequested` (or `ApprovalRequested`); every settle below
    goes through the one wake path."""

    @abc.abstractmethod
    async def settle_wait(
        self, wait_id: str, result: Any = None, *, status: str = "settled"
    ) -> bool:
        """Compare-and-set the wait pending -> `status` with `result`, then queue its run if
        it waits for nothing else, in one transaction. False (nothing changed) when the wait
        is not pending any more: of racing deliveries, exactly one wins."""

    @abc.abstractmethod
    async def deliver_signal(self, run_id: str, name: str, payload: Any = None) -> str | None:
        """Settle the run's oldest pending wait for signal `name` with `payload` (returns its
        id), or keep the signal for the next such wait (returns None). `RunNotFound`, or
        `RunAlreadyFinished` for a run that has ended."""

    @abc.abstractmethod
    async def complete_remote(self, remote_id: str, result: Any = None) -> list[str]:
        """Settle every pending wait on remote task `remote_id`; the ids settled."""

    @abc.abstractmethod
    async def remote_waits(self, prefix: str, limit: int = 500) -> list[WaitRecord]:
        """Pending remote waits whose key starts with `prefix` (a kind's, e.g. `a2a:`),
        oldest first: what that kind's watcher follows."""

    @abc.abstractmethod
    async def waits(self, run_id: str) -> list[WaitRecord]:
        """The run's waits, oldest first."""

    @abc.abstractmethod
    async def get_wait(self, wait_id: str) -> WaitRecord | None: ...

    @abc.abstractmethod
    async def settled_waits(self, run_id: str, among: Collection[str]) -> list[WaitRecord]:
        """The run's waits among `among` (the ones its open calls are parked on) that are no
        longer pending: what a woken run collects. Reads the ids of the run's settled
        waits, then only those rows (a parent of 1,000 children decodes the few that ended
        since it last looked, not every wait at every wake)."""

    @abc.abstractmethod
    async def due_waits(self, now: float) -> list[WaitRecord]:
        """Pending waits with an answer and nobody to deliver it: past their deadline (not
        approvals: `expire_approvals`), or on a child run that has ended."""

    @abc.abstractmethod
    async def child_outcome(self, run_id: str) -> dict[str, Any] | None:
        """What a child wait's result is: the run's id, status, output and reason."""

    @abc.abstractmethod
    async def cancel_waits(self, run_id: str) -> None:
        """Cancel the run's pending waits (also done by the append that ends the run)."""

    @abc.abstractmethod
    async def wake_for_kill(self, run_id: str) -> bool:
        """Queue a parked run that a kill switch covers, its waits still pending, so that a
        worker's loop records the kill at its step boundary (`engine/waits.wake_killed`).
        False if the run is not parked (a running run sees the switch at its next commit)."""


class RouterStore(abc.ABC):
    """The learning router's shared state and the rewards it learns from
    (`bosun.routing`). Every worker reads and updates the same rows."""

    @abc.abstractmethod
    async def router_state(self, key: str) -> tuple[int, bytes] | None:
        """(version, state) of the learned model `key`, or None if nothing was learned."""

    @abc.abstractmethod
    async def router_state_put(self, key: str, version: int, state: bytes) -> bool:
        """Store `state` if the row is still at `version` (0: there is no row yet); False
        if another worker updated it first (read again and re-apply)."""

    @abc.abstractmethod
    async def router_state_reset(self, prefix: str) -> int:
        """Forget the learned models `prefix` names (exactly, or `prefix/...`)."""

    @abc.abstractmethod
    async def router_states(self) -> list[tuple[str, int, float]]:
        """(key, version, updated_at) of every learned model."""

    @abc.abstractmethod
    async def add_feedback(self, feedback: Feedback) -> None: ...

    @abc.abstractmethod
    async def feedback(
        self, *, tenant: str | None = None, run_id: str | None = None
    ) -> list[Feedback]:
        """Rewards of one tenant's runs, or of one run, oldest first."""


class Store(
    RunStore,
    WaitStore,
    GovernanceStore,
    AccessStore,
    ObserveStore,
    ArtifactStore,
    TriggerStore,
    RouterStore,
    PushStore,
):
    """Durable storage for runs, their journals, governance, access and observation: every
    concern, as one object (what `open_store` returns and what everyone imports)."""
