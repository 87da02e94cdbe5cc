"""Limit checks at step boundaries and before each tool call. Each returns why it stops, or None."""

from __future__ import annotations

from bosun.engine.state import CallState, RunState
from bosun.journal.events import LimitReached
from bosun.spec.limits import Limits


def effective_limits(agent_limits: Limits, state: RunState) -> Limits:
    return agent_limits.merged(Limits(**state.limits) if state.limits else None)


def check_step(
    limits: Limits,
    state: RunState,
    now: float,
    children: tuple[int, int, float] = (0, 0, 0.0),
) -> LimitReached | None:
    """Before a model call (at every step: plain comparisons, nothing built unless one hits).
    `children` is what the run committed to child runs (steps, tokens, cost): a run's
    budget covers its whole subtree (`engine/budgets.py`)."""
    steps, tokens, cost = children
    if limits.max_steps is not None and state.steps + steps >= limits.max_steps:
        return _reached("max_steps", state.steps, limits.max_steps, "model steps", steps)
    if limits.max_tokens is not None and state.tokens + tokens >= limits.max_tokens:
        return _reached("max_tokens", state.tokens, limits.max_tokens, "tokens", tokens)
    if limits.max_cost is not None and state.cost + cost >= limits.max_cost:
        return _reached("max_cost", state.cost, limits.max_cost, "USD spent", cost)
    elapsed = now - state.started_at
    if limits.max_wall_seconds is not None and elapsed >= limits.max_wall_seconds:
        return _reached("max_wall_seconds", elapsed, limits.max_wall_seconds, "seconds elapsed")
    return None


def _reached(
    name: str, value: float, maximum: float, unit: str, children: float = 0
) -> LimitReached:
    total = round(value + children, 6)
    by_children = f", {round(children, 6)} of them by child runs" if children else ""
    return LimitReached(
        limit=name,
        value=total,
        maximum=maximum,
        reason=f"{name} reached: {total} {unit}{by_children} (limit {maximum})",
    )


def check_tool(limits: Limits, state: RunState, call: CallState) -> LimitReached | None:
    """Before a tool call starts. Repetition counts proposals: a call re-attempted after a
    crash is still one proposal."""
    if limits.max_tool_calls is not None and state.tool_calls >= limits.max_tool_calls:
        return LimitReached(
            limit="max_tool_calls",
            value=state.tool_calls,
            maximum=limits.max_tool_calls,
            reason=f"max_tool_calls reached: {state.tool_calls} calls (limit {limits.max_tool_calls})",
        )
    n = limits.max_repeats
    if n is not None and call.repeats >= n:
        return LimitReached(
            limit="max_repeats",
            value=n,
            maximum=n,
            reason=f"max_repeats reached: the model proposed {call.tool} {n} times in a row "
            f"with the same arguments {call.arguments}",
        )
    return None
