"""The rules Bosun ships against prompt injection, as named profiles.

Prompt injection works by getting text a third party wrote (an e-mail, a web page, a
ticket) in front of the model and having the model act on it. The engine records where
each argument value of a proposed call came from (`bosun.govern.provenance`: the user's
request, the instructions, a trusted tool, an untrusted tool, or nowhere) and which
arguments are sinks (`bosun.spec.sinks`: egress, targets, amounts). The profiles:

- `default` (policy v2, what an agent gets unless it says otherwise): hold a call (ask
  role `approver`) when a sink argument's value came only from untrusted content, or an
  egress or target came from nowhere (the model made it up), and the user's request did
  not delegate it (`suspect_args`); and hold an irreversible call of a tool that declares
  no sinks when any argument came from untrusted content. Calls whose sinks the user or
  trusted data supplied go through, whatever the run read before.
- `strict`: `default` plus the blanket rule: any irreversible call after the run read
  untrusted content needs approval.
- `legacy`: exactly the two rules Bosun shipped before v2 (the argument rule on
  irreversible calls, and the blanket rule), for operators who want no change.

Every policy includes its profile's rules unless it sets `include_defaults: false`; they
are evaluated before the policy's own rules and can only make a decision stricter (see
`bosun.govern.policy`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bosun.spec.vocab import Profile

if TYPE_CHECKING:
    from bosun.govern.policy import Policy


_ARGUMENT_RULE: dict[str, Any] = {
    "name": "default:argument-from-untrusted-content",
    "effects": ["irreversible"],
    "when": "size(tainted_args) > 0",
    "effect": "require_approval",
    "approver_role": "approver",
    "reason": (
        "An argument of this irreversible call has a value that appears only in "
        "untrusted content (not in the user's request): check it was not injected."
    ),
}
_BLANKET_RULE: dict[str, Any] = {
    "name": "default:irreversible-after-untrusted-content",
    "effects": ["irreversible"],
    "when": "read_untrusted",
    "effect": "require_approval",
    "approver_role": "approver",
    "reason": (
        "This run has read untrusted content (output of a tool not marked trusted); "
        "an irreversible action now needs a person's approval."
    ),
}
_SINK_RULE: dict[str, Any] = {
    "name": "default:sink-not-from-user",
    "has_sinks": True,
    "when": "size(suspect_args) > 0",
    "effect": "require_approval",
    "approver_role": "approver",
    "reason": (
        "Where this call sends, what it changes or how much it moves did not come from "
        "the user's request or trusted data: check it was not injected."
    ),
}
_UNDECLARED_RULE: dict[str, Any] = {
    "name": "default:undeclared-irreversible-from-untrusted",
    "effects": ["irreversible"],
    "has_sinks": False,
    "when": "size(args_from_untrusted) > 0",
    "effect": "require_approval",
    "approver_role": "approver",
    "reason": (
        "An argument of this irreversible call (a tool that declares no sinks) has a "
        "value first seen in untrusted content: check it was not injected."
    ),
}

PROFILES: dict[str, tuple[dict[str, Any], ...]] = {
    Profile.DEFAULT: (_SINK_RULE, _UNDECLARED_RULE),
    Profile.STRICT: (_SINK_RULE, _UNDECLARED_RULE, _BLANKET_RULE),
    Profile.LEGACY: (_ARGUMENT_RULE, _BLANKET_RULE),
}
#: The default profile's rules (what a new agent gets).
DEFAULT_RULES: tuple[dict[str, Any], ...] = PROFILES[Profile.DEFAULT]


def default_policy(profile: str = Profile.DEFAULT) -> Policy:
    """The policy of an agent that declares none: a profile's rules, everything else allowed."""
    from bosun.govern.policy import Policy  # policy.py imports PROFILES from here

    return Policy(name="bosun-default", version="1", profile=profile)


__all__ = ["DEFAULT_RULES", "PROFILES", "Profile", "default_policy"]
