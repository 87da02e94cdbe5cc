"""The runtime's governance gate: kill switches, policy, autonomy, quotas, breakers.

The step loop asks it two questions: "is anything killed here?" (at every step
boundary and before every action) and "may this call run?" (before every tool
call). Everything it needs comes from the agent's pinned definition and the
shared database, so every worker answers the same way.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable, Sequence
from typing import Any

from bosun.govern.autonomy import apply_autonomy, effective_autonomy
from bosun.govern.breakers import ToolBreakers
from bosun.govern.decision import ActionContext, Decision
from bosun.govern.defaults import default_policy
from bosun.govern.policy import Policy
from bosun.govern.suspects import CallProvenance
from bosun.spec.agent import Agent
from bosun.spec.limits import RateLimit
from bosun.spec.tool import EFFECTS, Tool
from bosun.spec.vocab import Origin
from bosun.store.base import KillSwitch, Store

DAY = 86_400.0


def kill_scopes(
    tenant: str, agent: str, tool: str | None = None, lineage: Sequence[str] = ()
) -> list[str]:
    """The kill-switch scopes that cover a run (and one of its tools). `lineage` is the run
    and its ancestors: a switch on `run:ID` stops that run and its whole subtree."""
    scopes = ["global", f"tenant:{tenant}", f"agent:{agent}"]
    if tool:
        scopes.append(f"tool:{tool}")
    scopes.extend(f"run:{run_id}" for run_id in lineage)
    return scopes


def start_of_day(now: float) -> float:
    return now - (now % DAY)


class Governor:
    def __init__(self, store: Store, breakers: ToolBreakers | None = None):
        self.store = store
        self.breakers = breakers or ToolBreakers(store)
        self._policies: dict[str, Policy] = {}
        # Decisions no rule's condition takes part in, by (agent version, tool, effect, known):
        # the common case of a tool no rule is about needs no context built, nothing evaluated.
        self._fixed: dict[tuple[str, str, str, bool], Decision] = {}

    # -- policy ----------------------------------------------------------

    def policy_for(self, agent: Agent) -> Policy:
        """The agent's pinned policy (compiled once per agent version)."""
        policy = self._policies.get(agent.version_id)
        if policy is None:
            policy = resolve_policy(agent.policy)
            self._policies[agent.version_id] = policy
        return policy

    def visible_tools(self, agent: Agent) -> list[Tool]:
        """Blast radius: the model is never shown a tool the policy hides from this agent."""
        policy = self.policy_for(agent)
        return [t for t in agent.tool_map.values() if policy.visible(agent.name, t.name)]

    def autonomy_of(self, agent: Agent, tool: str) -> str:
        return effective_autonomy(agent.autonomy, agent.tool_autonomy, tool)

    def decide(
        self,
        agent: Agent,
        tool_name: str,
        tool: Tool | None,
        args: dict[str, Any],
        *,
        tenant: str,
        user: str | None,
        session: str | None,
        tags: dict[str, str],
        spend: float,
        read_untrusted: bool,
        tainted_args: Sequence[str] = (),
        provenance: Callable[[], CallProvenance] | None = None,
        facts: dict[str, dict[str, Any]] | None = None,
    ) -> Decision:
        """`provenance` is called only when some rule may read it (the decision is not the
        same for every call of this tool), so a run that needs none computes none."""
        effect = tool.effect if tool is not None else "unknown"
        key = (agent.version_id, tool_name, effect, tool is not None)
        fixed = self._fixed.get(key)
        if fixed is not None:
            return fixed
        found = provenance() if provenance is not None else None
        if found is not None:
            tainted_args = found.named(Origin.UNTRUSTED)
        ctx = ActionContext(
            agent=agent.name,
            tool=tool_name,
            effect=effect if effect in EFFECTS else "unknown",
            autonomy=self.autonomy_of(agent, tool_name),
            args=args,
            tenant=tenant,
            user=user,
            session=session,
            tags=tags,
            spend=spend,
            read_untrusted=read_untrusted,
            tainted_args=tuple(tainted_args),
            tool_known=tool is not None,
            facts=facts or {},
            declares_sinks=bool(tool is not None and tool.sinks),
            **(_provenance_vars(found) if found is not None else {}),
        )
        policy = self.policy_for(agent)
        decision = apply_autonomy(policy.decide(ctx), ctx)
        if found is not None:
            decision = _with_provenance(decision, found, tool)
        if policy.is_fixed(ctx):
            if len(self._fixed) >= 10_000:  # agent versions x tools: small; stay bounded
                self._fixed.clear()
            self._fixed[key] = decision
        return decision

    # -- shared state: kill switches, quotas, spend --------------------------

    async def kill_switch(
        self, tenant: str, agent: str, tool: str | None = None
    ) -> KillSwitch | None:
        return await self.store.active_kill_switch(kill_scopes(tenant, agent, tool))

    async def rate_limited(
        self,
        limits: Sequence[RateLimit],
        *,
        agent: str,
        tool: str,
        user: str | None,
        tenant: str,
    ) -> str | None:
        """Count this call against every matching rate limit; the reason if one is exceeded."""
        for i, limit in enumerate(limits):
            if not any(fnmatch.fnmatchcase(tool, pattern) for pattern in limit.tools):
                continue
            who = {"agent": agent, "tool": tool, "user": user or "-", "tenant": tenant}[limit.per]
            key = f"{agent}#{i}:{limit.per}={who}"
            if limit.per != "tool":
                key += "" if limit.tools == ("*",) else f":{','.join(limit.tools)}"
            allowed = await self.store.take_rate(
                key, limit=limit.limit, window_seconds=limit.window_seconds
            )
            if not allowed:
                return (
                    f"rate limit: at most {limit.limit} calls of {', '.join(limit.tools)} per "
                    f"{limit.window_seconds:g}s per {limit.per} ({who}); try again later"
                )
        return None

    async def spend_cap_reached(self, agent: Agent, tenant: str) -> str | None:
        limits = agent.limits
        if limits.max_agent_daily_cost is None and limits.max_tenant_daily_cost is None:
            return None
        since = start_of_day(time.time())
        if limits.max_agent_daily_cost is not None:
            spent = await self.store.spend_since(since, agent=agent.name)
            if spent >= limits.max_agent_daily_cost:
                return (
                    f"max_agent_daily_cost reached: agent {agent.name} spent ${spent:.4f} today "
                    f"(limit ${limits.max_agent_daily_cost})"
                )
        if limits.max_tenant_daily_cost is not None:
            spent = await self.store.spend_since(since, tenant=tenant)
            if spent >= limits.max_tenant_daily_cost:
                return (
                    f"max_tenant_daily_cost reached: tenant {tenant} spent ${spent:.4f} today "
                    f"(limit ${limits.max_tenant_daily_cost})"
                )
        return None


def _provenance_vars(found: CallProvenance) -> dict[str, Any]:
    return {
        "provenance": found.origins,
        "args_from_untrusted": found.named(Origin.UNTRUSTED),
        "args_from_nowhere": found.named(Origin.NONE),
        "sinks": found.sinks,
        "suspect_args": found.suspect,
        "delegated_args": found.delegated,
    }


def _with_provenance(decision: Decision, found: CallProvenance, tool: Tool | None) -> Decision:
    """The decision with its provenance record, and, when it stops the call, the suspect
    arguments and where their values came from in its reason (what the approver reads)."""
    reason = decision.reason
    if decision.verdict != "allow" and found.suspect:
        reason = f"{reason} {found.explain(tool.sensitive if tool else ())}."
    record = found.record()
    if record is None and reason is decision.reason:
        return decision
    d = decision  # built field by field: dataclasses.replace costs more than the rest
    return Decision(
        d.verdict,
        d.rule,
        reason,
        d.policy_version,
        d.approver_role,
        d.expires_after,
        d.on_expiry,
        d.escalate_to,
        d.reviewer,
        record,
    )


def resolve_policy(policy: Any) -> Policy:
    """A `Policy` from what an agent holds: None (the defaults), a document, or a file path."""
    if policy is None:
        return default_policy()
    if isinstance(policy, Policy):
        return policy
    if isinstance(policy, str):
        return Policy.from_file(policy)
    return Policy.from_dict(policy)
