"""The Store interface: what the runtime needs from a database, and nothing more.

Two implementations (SQLite, PostgreSQL) pass the same contract tests
(`tests/store/test_contract.py`). The journal (`events`) is append-only; the
`runs` row is a summary projection plus the queue and lease columns, updated in
the same transaction as the events it summarises so the two never disagree.
"""

from __future__ import annotations

import abc
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bosun.journal.events import Event

# Run statuses. Terminal ones never change again.
QUEUED = "queued"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"
LIMIT_EXCEEDED = "limit_exceeded"
NEEDS_ATTENTION = "needs_attention"
TERMINAL_STATUSES = frozenset({SUCCEEDED, FAILED, CANCELLED, LIMIT_EXCEEDED})

# Event payloads whose JSON is larger than this are stored once in `blobs`, by hash.
BLOB_THRESHOLD = 8 * 1024


@dataclass(slots=True)
class RunRecord:
    """A run's summary row. Everything but the lease columns can be rebuilt from the journal."""

    id: str
    agent: str
    agent_version: str
    input: str
    spec: dict[str, Any]
    status: str = QUEUED
    tenant: str = "default"
    user: str | None = None
    session: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    created_at: float = 0.0
    updated_at: float = 0.0
    finished_at: float | None = None
    steps: int = 0
    tool_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    reason: str | None = None
    output: str | None = None
    last_seq: int = 0
    lease_owner: str | None = None
    lease_expires_at: float | None = None
    cancel_requested: bool = False


@dataclass(slots=True, frozen=True)
class RunSummary:
    """The projection columns `append` updates with each commit."""

    status: str
    steps: int
    tool_calls: int
    input_tokens: int
    output_tokens: int
    cost: float
    reason: str | None = None
    output: str | None = None
    finished_at: float | None = None


@dataclass(slots=True, frozen=True)
class AppendResult:
    cancel_requested: bool


@dataclass(slots=True, frozen=True)
class GcReport:
    runs: int
    events: int
    blobs: int
    bytes_freed: int


def blob_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Store(abc.ABC):
    """Durable storage for runs, their journals and large payloads."""

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
    async def create_run(self, run: RunRecord, events: Sequence[Event]) -> None:
        """Insert the run row and its first events (seq 1..n) in one transaction."""

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
    ) -> list[RunRecord]:
        """Newest first."""

    @abc.abstractmethod
    async def claim(self, worker: str, *, limit: int, lease_seconds: float) -> list[RunRecord]:
        """Lease up to `limit` runs that are queued, or running with an expired lease.

        Safe with many workers: a run is never handed to two live leases.
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
        """Ask a run to stop at its next step boundary. False if it is already finished."""

    @abc.abstractmethod
    async def gc(self, older_than: float) -> GcReport:
        """Delete the journals of runs finished before `older_than` (epoch seconds).

        Their `runs` rows stay as the summary; blobs no longer referenced go too.
        """
