"""Autonomy levels: how much an agent may do on its own, applied after the policy verdict.

- `observe`: effectful (write/irreversible) actions are recorded, not executed
  (`shadow`); reads keep the policy's verdict.
- `suggest`: every effectful action the policy would allow (or allow and
  notify) needs a person's approval (role `approver`).
- `auto_notify`: allowed effectful actions run, then someone is notified.
- `auto`: the policy's verdict stands.

Autonomy never loosens a verdict: a deny stays a deny at every level, and a
stricter verdict (approval, shadow) is kept. The level is per agent,
overridable per tool (`effective_autonomy`); the engine puts the effective
level in `ActionContext.autonomy`, so rules can also filter on it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping

from bosun.errors import SpecError
from bosun.govern.decision import AUTONOMY_LEVELS, ActionContext, Decision


def effective_autonomy(agent_level: str, tool_overrides: Mapping[str, str], tool: str) -> str:
    """The level for one tool: its override (exact name first, then fnmatch globs in
    order), else the agent's level."""
    level = tool_overrides.get(tool)
    if level is None:
        for pattern, value in tool_overrides.items():
            if fnmatch.fnmatchcase(tool, pattern):
                level = value
                break
    level = level or agent_level
    if level not in AUTONOMY_LEVELS:
        raise SpecError(
            f"autonomy for tool {tool!r} is {level!r}; use one of {', '.join(AUTONOMY_LEVELS)}"
        )
    return level


def apply_autonomy(decision: Decision, ctx: ActionContext) -> Decision:
    """The decision after the autonomy level in `ctx.autonomy` has had its say."""
    if ctx.effect == "read" or decision.verdict == "deny":
        return decision
    level = ctx.autonomy
    said = f"the policy said {decision.verdict} ({decision.rule})"
    if level == "auto":
        return decision
    if level == "observe":
        if decision.verdict == "shadow":
            return decision
        return Decision(
            "shadow",
            "autonomy:observe",
            f"agent {ctx.agent} runs at autonomy observe for {ctx.tool}: its effectful "
            f"actions are recorded, not executed; {said}",
            decision.policy_version,
        )
    if level == "suggest":
        # A reviewer agent's approval never stands in for the person `suggest` asks for.
        if decision.verdict not in ("allow", "notify", "review"):
            return decision
        return Decision(
            "require_approval",
            "autonomy:suggest",
            f"agent {ctx.agent} runs at autonomy suggest for {ctx.tool}: every effectful "
            f"action needs approval; {said}",
            decision.policy_version,
            approver_role="approver",
        )
    if level == "auto_notify":
        if decision.verdict != "allow":
            return decision
        return Decision(
            "notify",
            "autonomy:auto_notify",
            f"agent {ctx.agent} runs at autonomy auto_notify for {ctx.tool}: the action "
            f"runs, then someone is notified; {said}",
            decision.policy_version,
        )
    return Decision(
        "deny",
        "autonomy:unknown",
        f"autonomy level {level!r} is not one of {', '.join(AUTONOMY_LEVELS)}; "
        "effectful actions are denied until it is fixed",
        decision.policy_version,
    )


__all__ = ["apply_autonomy", "effective_autonomy"]
