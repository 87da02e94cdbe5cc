"""A new run's row and its first event, as `Runtime` creates every run (top-level or child).

Kept apart from the runtime so that creation reads in one place: the id, the `RunStarted`
event stamped by the journal writer (its time is the run's creation time), the row with
its tree columns and, for a run driven here at once, the lease.
"""

from __future__ import annotations

import uuid

from bosun.engine.journal import JournalWriter
from bosun.journal.events import RunStarted
from bosun.spec.agent import Agent
from bosun.spec.limits import Limits
from bosun.store.base import RunRecord


def new_run_id() -> str:
    return "run_" + uuid.uuid4().hex[:20]


def new_run(
    journal: JournalWriter,
    agent: Agent,
    input: str,
    *,
    status: str,
    tenant: str,
    user: str | None,
    session: str | None,
    tags: dict[str, str] | None,
    limits: Limits | None,
    key: str | None,
    parent: RunRecord | None,
    lease: tuple[str, float] | None,
    history: list[dict[str, str]] | None = None,
) -> tuple[RunRecord, RunStarted]:
    """The row and first event of a new run, stamped now; `lease` is (owner, seconds)
    for a run this process drives at once."""
    run_id = new_run_id()
    parent_id = parent.id if parent is not None else None
    root_id = parent.root_id if parent is not None else run_id
    started = journal.stamp(
        RunStarted(
            agent=agent.name,
            agent_version=agent.version_id,
            input=input,
            tenant=tenant,
            user=user,
            session=session,
            tags=dict(tags or {}),
            limits=limits.model_dump(exclude_none=True) if limits else None,
            parent_id=parent_id,
            root_id=root_id if parent_id is not None else None,
            history=history or None,
        )
    )
    now = started.ts  # the run was created when it started
    run = RunRecord(
        id=run_id,
        agent=agent.name,
        agent_version=agent.version_id,
        input=input,
        spec=agent.snapshot(),
        status=status,
        tenant=tenant,
        user=user,
        session=session,
        tags=dict(tags or {}),
        created_at=now,
        parent_id=parent_id,
        root_id=root_id,
        idempotency_key=key,
    )
    if lease is not None:
        run.lease_owner, seconds = lease
        run.lease_expires_at = now + seconds
    return run, started
