"""The rules Bosun ships for irreversible tools and untrusted content.

Prompt injection works by getting text a third party wrote (an e-mail, a web
page, a ticket) in front of the model and having the model act on it. Two
signals catch most of it without understanding the text:

- the run has read untrusted content (output of a tool declared
  `trusted=False`) and now wants to do something irreversible;
- an argument of an irreversible call has a value that appears only in
  untrusted content: not in the user's request, not in trusted tool output
  (see `bosun.govern.taint.tainted_arguments`).

Both ask a person (role `approver`) before the action runs. Every policy
includes these rules unless it sets `include_defaults: false`; they are
evaluated before the policy's own rules and can only make a decision
stricter (see `bosun.govern.policy`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bosun.govern.policy import Policy

DEFAULT_RULES: tuple[dict[str, Any], ...] = (
    {
        "name": "default:argument-from-untrusted-content",
        "effects": ["irreversible"],
        "when": "size(tainted_args) > 0",
        "effect": "require_approval",
        "approver_role": "approver",
        "reason": (
            "An argument of this irreversible call has a value that appears only in "
            "untrusted content (not in the user's request): check it was not injected."
        ),
    },
    {
        "name": "default:irreversible-after-untrusted-content",
        "effects": ["irreversible"],
        "when": "read_untrusted",
        "effect": "require_approval",
        "approver_role": "approver",
        "reason": (
            "This run has read untrusted content (output of a tool not marked trusted); "
            "an irreversible action now needs a person's approval."
        ),
    },
)


def default_policy() -> Policy:
    """The policy of an agent that declares none: the default rules, everything else allowed."""
    from bosun.govern.policy import Policy  # policy.py imports DEFAULT_RULES from here

    return Policy(name="bosun-default", version="1")


__all__ = ["DEFAULT_RULES", "default_policy"]
