"""Rows the observe layer reads from a store: usage, a metrics snapshot, watchdog findings.

Both stores implement the same four methods (`SqliteObserve`, `PostgresObserve`); the
methods are declared at the end of `Store`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

FINDING_KINDS = ("no_progress", "repeating", "overspending")


@dataclass(slots=True, frozen=True)
class UsageRow:
    """One model answer's usage (from the journal), with the run's attribution columns.

    A run whose journal was garbage-collected contributes one row with its totals from
    the runs summary, `model` "(journal removed)" and `ts` its finish time.
    """

    run_id: str
    agent: str
    tenant: str
    user: str | None
    session: str | None
    tags: dict[str, str]
    ts: float
    model: str
    input_tokens: int
    output_tokens: int
    cost: float
    root: str = ""  # the run tree's root (the run itself at the top): `usage --by root`


@dataclass(slots=True, frozen=True)
class MetricsSnapshot:
    """What `/metrics` reads from the database at scrape time (shared by every worker)."""

    runs: dict[tuple[str, str], int] = field(default_factory=dict)  # (agent, status), live runs
    queue_depth: int = 0  # queued runs
    orphaned: int = 0  # running with an expired lease: waiting for a takeover
    approvals_pending: int = 0
    oldest_approval_age: float = 0.0  # seconds the oldest pending approval has waited
    approvals_resolved: int = 0  # approved or denied by a person
    approvals_overridden: int = 0  # of those: denied, or approved with edited arguments
    kill_switches: tuple[str, ...] = ()

    @classmethod
    def of(
        cls,
        runs: dict[tuple[str, str], int],
        orphaned: int,
        pending: int,
        oldest: float | None,
        resolved: int,
        overridden: int,
        switches: tuple[str, ...],
        now: float,
    ) -> MetricsSnapshot:
        """The snapshot from what both stores' queries return (`sql.LIVE_RUNS` ...)."""
        return cls(
            runs={key: int(n) for key, n in runs.items()},
            queue_depth=sum(int(n) for (_, status), n in runs.items() if status == "queued"),
            orphaned=int(orphaned),
            approvals_pending=int(pending),
            oldest_approval_age=max(0.0, now - oldest) if oldest is not None else 0.0,
            approvals_resolved=int(resolved),
            approvals_overridden=int(overridden),
            kill_switches=switches,
        )


@dataclass(slots=True, frozen=True)
class Finding:
    """A watchdog observation about a run: `no_progress`, `repeating` or `overspending`.

    One per (run, kind, at_seq): the same stall seen twice is recorded once.
    """

    run_id: str
    kind: str
    detail: str
    at_seq: int
    ts: float
    agent: str = ""
    tenant: str = "default"


MODEL_RESPONDED = "model_responded"
JOURNAL_REMOVED = "(journal removed)"

FINDINGS_COLUMNS = "run_id, kind, detail, at_seq, ts, agent, tenant"


def finding_values(finding: Finding) -> tuple[object, ...]:
    """The values of `FINDINGS_COLUMNS`."""
    return (
        finding.run_id,
        finding.kind,
        finding.detail,
        finding.at_seq,
        finding.ts,
        finding.agent,
        finding.tenant,
    )


def usage_from_event(row: tuple) -> UsageRow:
    """(run_id, agent, tenant, user, session, tags, ts, data, root) -> UsageRow."""
    run_id, agent, tenant, user, session, tags, ts, data, root = row
    raw = bytes(data) if not isinstance(data, str) else data.encode()
    fields = orjson.loads(raw)
    return UsageRow(
        run_id=run_id,
        agent=agent,
        tenant=tenant,
        user=user,
        session=session,
        tags=_tags(tags),
        ts=ts,
        model=str(fields.get("model") or "unknown"),
        input_tokens=int(fields.get("input_tokens") or 0),
        output_tokens=int(fields.get("output_tokens") or 0),
        cost=float(fields.get("cost") or 0.0),
        root=root,
    )


def usage_from_summary(row: tuple) -> UsageRow:
    """(run_id, agent, tenant, user, session, tags, finished_at, in, out, cost, root)."""
    run_id, agent, tenant, user, session, tags, ts, tokens_in, tokens_out, cost, root = row
    return UsageRow(
        run_id, agent, tenant, user, session, _tags(tags), ts or 0.0, JOURNAL_REMOVED,
        int(tokens_in), int(tokens_out), float(cost), root,
    )  # fmt: skip


def _tags(value: object) -> dict[str, str]:
    if isinstance(value, str | bytes):
        return orjson.loads(value)
    return dict(value or {})  # type: ignore[call-overload]
