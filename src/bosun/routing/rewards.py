"""Rewards the learning router learns from, wherever they come from.

- a person's score: `bosun feedback RUN --score X`, `POST /api/runs/{id}/feedback`, the
  console's thumbs (1 up, 0 down);
- an approval's outcome in the run (approved as is 1, edited 0.5, denied 0);
- a reviewer's verdict (approve 1, edit 0.5, veto 0);
- a workflow's task outcome (`give_feedback(..., source="workflow")`).

A reward is recorded (`router_feedback`) and applied at once to the shared model of
every learned decision of the run (`ModelRouted` with features), on the candidate that
answered. Scores are qualities in [0, 1]; the price of cost was applied when deciding.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from bosun.errors import BosunError
from bosun.journal.events import Event, FeedbackRecorded, ModelRouted, ReviewDecided
from bosun.store.base import Store
from bosun.store.records import Feedback

APPROVAL_REWARD = {"approved_as_is": 1.0, "edited": 0.5, "denied": 0.0}
REVIEW_REWARD = {"approve": 1.0, "edit": 0.5, "veto": 0.0}
SOURCES = ("person", "approval", "review", "workflow")


def learned_decisions(events: Sequence[Event]) -> list[ModelRouted]:
    return [
        e
        for e in events
        if isinstance(e, ModelRouted)
        and e.chosen
        and e.features
        and e.policy in ("learned", "paced")
    ]


async def _model_key(store: Store, route: str, tenant: str) -> str:
    own = await store.router_state(f"{route}/own/{tenant}")
    return f"{route}/tenant/{tenant}" if own is not None else route


async def _shape(store: Store, key: str, route: str) -> tuple[int, list[str]]:
    """(dims, arms) of the route's model: its definition if registered here, else the
    stored model's (a `bosun feedback` process need not know the route)."""
    from bosun.routing.provider import arms_of
    from bosun.routing.registry import routes

    known = routes().get(route)
    if known is not None and known.learn is not None:
        return known.learn.dims, [a.name for a in arms_of(known)]
    row = await store.router_state(key)
    if row is not None:
        from bosun.routing.bandit import LinearThompson

        model = LinearThompson.from_bytes(row[1])
        return model.dims, model.arms
    return 128, []


async def give_feedback(
    store: Store,
    run_id: str,
    score: float,
    *,
    source: str = "person",
    comment: str | None = None,
    tenant: str | None = None,
) -> int:
    """Record a reward for `run_id` and learn from it; returns the decisions it updated.
    `tenant`, when given, must be the run's (an API caller sees only its own runs)."""
    if not 0.0 <= score <= 1.0:
        raise BosunError(f"--score {score}: give a quality between 0 (bad) and 1 (good)")
    if source not in SOURCES:
        raise BosunError(f"feedback source {source!r}: one of {', '.join(SOURCES)}")
    run = await store.get_run(run_id)
    if run is None or (tenant is not None and run.tenant != tenant):
        raise BosunError(f"no run {run_id!r}")
    await store.add_feedback(Feedback(run_id, time.time(), score, source, run.tenant, comment))
    decisions = learned_decisions([e for _, e in await store.events(run_id)])
    if decisions:
        from bosun.routing.learner import update_model  # numpy, only when there is learning
    for d in decisions:
        key = await _model_key(store, d.route, run.tenant)
        dims, arms = await _shape(store, key, d.route)
        x = [(int(i), float(v)) for i, v in d.features]
        await update_model(store, key, d.chosen, x, score, dims=dims, arms=arms)
    return len(decisions)


def outcome_score(event: Event) -> tuple[float, str] | None:
    """The reward an approval's outcome or a reviewer's verdict gives, if it is one."""
    if isinstance(event, FeedbackRecorded) and event.feedback in APPROVAL_REWARD:
        return APPROVAL_REWARD[event.feedback], "approval"
    if isinstance(event, ReviewDecided) and event.verdict in REVIEW_REWARD:
        return REVIEW_REWARD[event.verdict], "review"
    return None


class OutcomeListener:
    """A journal listener: approvals' outcomes and reviewers' verdicts become rewards of
    the run they were given in (queued as tasks: a listener must be cheap)."""

    def __init__(self, store: Store):
        self.store = store
        self.tasks: set[asyncio.Task[Any]] = set()

    def __call__(self, run_id: str, first_seq: int, events: Sequence[Event]) -> None:
        for event in events:
            scored = outcome_score(event)
            if scored is None:
                continue
            score, source = scored
            task = asyncio.get_running_loop().create_task(
                give_feedback(self.store, run_id, score, source=source, comment=event.kind)
            )
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def drain(self) -> None:
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)
