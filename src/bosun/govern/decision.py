"""What governance decides about one proposed action, and what it decides it from.

Plain data on both sides so decisions can be journaled, explained and tested
without a runtime.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from bosun.spec.vocab import Autonomy, Verdict

# Plain-string views of the vocabulary (for messages and CLI choices); the lists
# themselves live once, in `bosun.spec.vocab`.
VERDICTS: tuple[str, ...] = tuple(v.value for v in Verdict)
AUTONOMY_LEVELS: tuple[str, ...] = tuple(a.value for a in Autonomy)


@dataclass(frozen=True, slots=True)
class ActionContext:
    """Everything a policy may look at for one proposed tool call.

    In CEL conditions these are top-level variables: `agent`, `tool`, `effect`,
    `autonomy`, `args`, `tenant`, `user`, `session`, `tags`, `spend`,
    `read_untrusted`, `tainted_args`, `tool_known`, and provenance
    (`bosun.govern.provenance`): `provenance` (argument -> `user`, `instructions`,
    `trusted`, `untrusted` or `none`), `args_from_untrusted`, `args_from_nowhere`,
    `sinks` (sink argument -> `egress`, `target` or `amount`), `suspect_args` (the sinks
    default policy v2 holds), `delegated_args` (sinks from untrusted content the
    user's request delegated to) and `facts` (what the run recalled from memory).
    """

    agent: str
    tool: str
    effect: str  # "read" | "write" | "irreversible" | "unknown"
    autonomy: str
    args: dict[str, Any]
    tenant: str = "default"
    user: str | None = None
    session: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    spend: float = 0.0  # USD spent by the run so far
    read_untrusted: bool = False  # the run has read output of a tool not marked trusted
    # Names of arguments whose value appears only in untrusted tool output
    # (not in the user's request nor in trusted results): a sign of injection.
    tainted_args: tuple[str, ...] = ()
    tool_known: bool = True
    # The facts the run recalled from memory, by `subject.attribute` (`order:1234.status`):
    # {value, source, trusted, stale, age (seconds since observed)}; freshness policies
    # read them (docs/memory.md, "Freshness policies").
    facts: dict[str, dict[str, Any]] = field(default_factory=dict)
    declares_sinks: bool = False  # the tool declares egress/targets/amounts (a filter, not CEL)
    provenance: dict[str, str] = field(default_factory=dict)
    args_from_untrusted: tuple[str, ...] = ()
    args_from_nowhere: tuple[str, ...] = ()
    sinks: dict[str, str] = field(default_factory=dict)
    suspect_args: tuple[str, ...] = ()
    delegated_args: tuple[str, ...] = ()

    def as_cel(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "tool": self.tool,
            "effect": self.effect,
            "autonomy": self.autonomy,
            "args": self.args,
            "tenant": self.tenant,
            "user": self.user or "",
            "session": self.session or "",
            "tags": self.tags,
            "spend": float(self.spend),
            "read_untrusted": self.read_untrusted,
            "tainted_args": list(self.tainted_args),
            "tool_known": self.tool_known,
            "facts": self.facts,
            "provenance": self.provenance,
            "args_from_untrusted": list(self.args_from_untrusted),
            "args_from_nowhere": list(self.args_from_nowhere),
            "sinks": self.sinks,
            "suspect_args": list(self.suspect_args),
            "delegated_args": list(self.delegated_args),
        }


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    rule: str  # the rule that decided, or a built-in name such as "default" / "autonomy:suggest"
    reason: str  # shown to the model on deny, to the approver on require_approval
    policy_version: str
    approver_role: str | None = None
    expires_after: float | None = None  # seconds an approval may wait
    on_expiry: Literal["deny", "escalate"] = "deny"
    escalate_to: str | None = None
    reviewer: str | None = None  # a `review` verdict: the reviewer agent that decides first
    # Where the call's sink arguments (and any from untrusted content) came from, as
    # journaled with the decision (`CallProvenance.record`); None when nothing to say.
    provenance: dict[str, Any] | None = None
