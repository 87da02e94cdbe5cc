"""Run-tree budgets: a child gets at most what its parent has left, and holds it.

A run's budget is its steps, tokens, cost and wall time. When a run starts a child, the
child's limits are capped at the parent's remainder: the parent's limit minus its own
spend minus what it has already committed to other children. The store then reserves the
child's capped steps, tokens and cost from the parent in one conditional statement
(`store/budgets_sql.py`), so two children started at once cannot both take the
remainder, and settles when the child finishes (the unused part goes back, the actual
spend stays charged). The parent's own limit checks count its children's commitments
with its own spend (`engine/limits.check_step`), so a tree never spends past its root's
budget, however deep or wide it grows. Wall time is not spent but shared: a child's
deadline is never later than its parent's.

Siblings started together (a fan-out) split what is left instead of racing for it: a child
takes at most its `share` of the parent's remainder in each limited dimension (steps,
tokens, cost), rounded down but at least one step or token while any is left. The share is
the agent tool's `share:`, else 1/k for the k agent calls of the turn still to start, so
N children started from one turn get about remainder/N each, and the k-th is never starved
by the first. A child that finds nothing left fails its call with `budget_exhausted`.
A child whose agent declares no limits asks for the defaults (`Limits`: 50 steps), so a
lone child reserves min(50, what the parent has left), never more.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bosun.errors import BudgetExhausted
from bosun.spec.limits import Limits
from bosun.store.base import RunRecord


@dataclass(frozen=True, slots=True)
class ChildBudget:
    """What a child may spend (`limits`, to journal in its `RunStarted`) and what it takes
    from its parent's budget while it runs (`steps`, `tokens`, `cost`; zero in a dimension
    the parent does not limit)."""

    limits: Limits
    steps: int
    tokens: int
    cost: float


def remainder(
    parent: RunRecord, now: float
) -> tuple[int | None, int | None, float | None, float | None]:
    """What the parent has left to give (steps, tokens, cost, seconds); None: unlimited."""
    own_tokens = parent.input_tokens + parent.output_tokens
    steps = (
        None
        if parent.limit_steps is None
        else parent.limit_steps - parent.steps - parent.child_steps
    )
    tokens = (
        None
        if parent.limit_tokens is None
        else parent.limit_tokens - own_tokens - parent.child_tokens
    )
    cost = (
        None if parent.limit_cost is None else parent.limit_cost - parent.cost - parent.child_cost
    )
    seconds = None if parent.deadline is None else parent.deadline - now
    return steps, tokens, cost, seconds


def child_budget(
    parent: RunRecord, requested: Limits, *, now: float, share: float = 1.0
) -> ChildBudget:
    """The child's limits capped at its `share` of the parent's remainder (`parent` as the
    store reads it: its own spend, its `limit_*`, `deadline` and `child_*`); raises
    `BudgetExhausted` when a limited dimension has nothing left. `requested` is the child
    agent's limits merged with the ones its caller asked for."""
    steps, tokens, cost, seconds = remainder(parent, now)
    gone = [
        f"{name} ({left} left)"
        for name, left, empty in (
            ("max_steps", steps, steps is not None and steps < 1),
            ("max_tokens", tokens, tokens is not None and tokens < 1),
            ("max_cost", None if cost is None else round(cost, 6), cost is not None and cost <= 0),
            (
                "max_wall_seconds",
                None if seconds is None else round(seconds, 3),
                seconds is not None and seconds <= 0,
            ),
        )
        if empty
    ]
    if gone:
        raise BudgetExhausted(
            f"run {parent.id} cannot start a child run: its budget is used up, by itself and"
            f" the children it started, for {', '.join(gone)}; raise the parent's limits, or"
            " let its other children finish (what they do not use goes back)"
        )
    capped = requested.model_copy(
        update={
            "max_steps": _cap(requested.max_steps, _part(steps, share)),
            "max_tokens": _cap(requested.max_tokens, _part(tokens, share)),
            "max_cost": _cap(requested.max_cost, None if cost is None else cost * share),
            "max_wall_seconds": _cap(requested.max_wall_seconds, seconds),
        }
    )
    return ChildBudget(
        limits=capped,
        steps=capped.max_steps or 0 if steps is not None else 0,
        tokens=capped.max_tokens or 0 if tokens is not None else 0,
        cost=capped.max_cost or 0.0 if cost is not None else 0.0,
    )


def _part(left: int | None, share: float) -> int | None:
    """`share` of a whole remainder: rounded down, but at least 1 while any is left."""
    if left is None or share >= 1:
        return left
    return max(1, int(left * share + 1e-9))


def _cap(wanted: Any, left: Any) -> Any:
    """The smaller of what the child wants and what is left; None is unlimited."""
    if left is None:
        return wanted
    return left if wanted is None else min(wanted, left)


def tree_limits(run: RunRecord, limits: Limits, started_at: float) -> None:
    """Write the run's limits as its children's reservations are checked against them."""
    run.limit_steps = limits.max_steps
    run.limit_tokens = limits.max_tokens
    run.limit_cost = limits.max_cost
    run.deadline = None if limits.max_wall_seconds is None else started_at + limits.max_wall_seconds


def hold(run: RunRecord, budget: ChildBudget) -> None:
    """Mark the run as holding `budget` of its parent's: the store reserves it on create."""
    run.reserved_steps = budget.steps
    run.reserved_tokens = budget.tokens
    run.reserved_cost = budget.cost
