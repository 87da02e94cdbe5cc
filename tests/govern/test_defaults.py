"""The shipped defaults ask a person before irreversible actions touched by untrusted content."""

from __future__ import annotations

from typing import Any

from bosun.govern.decision import ActionContext
from bosun.govern.defaults import DEFAULT_RULES, default_policy
from bosun.govern.policy import Policy


def refund(**fields: Any) -> ActionContext:
    base: dict[str, Any] = {
        "agent": "support",
        "tool": "issue_refund",
        "effect": "irreversible",
        "autonomy": "auto",
        "args": {"order": "A-1", "amount": 40},
    }
    return ActionContext(**{**base, **fields})


def test_irreversible_call_after_reading_untrusted_content_needs_approval():
    decision = default_policy().decide(refund(read_untrusted=True))
    assert decision.verdict == "require_approval"
    assert decision.rule == "default:irreversible-after-untrusted-content"
    assert decision.approver_role == "approver"


def test_irreversible_call_with_an_argument_only_untrusted_content_mentions_needs_approval():
    decision = default_policy().decide(refund(tainted_args=("amount",)))
    assert decision.verdict == "require_approval"
    assert decision.rule == "default:argument-from-untrusted-content"


def test_defaults_leave_clean_runs_and_reversible_tools_alone():
    p = default_policy()
    assert p.decide(refund()).verdict == "allow"
    assert p.decide(refund(effect="write", read_untrusted=True)).verdict == "allow"
    assert p.decide(refund(effect="read", tainted_args=("order",))).verdict == "allow"


def test_every_policy_includes_the_defaults_unless_it_opts_out():
    allow_all = {"name": "p", "rules": [{"name": "refunds-ok", "effect": "allow"}]}
    assert Policy.from_dict(allow_all).decide(refund(read_untrusted=True)).verdict == (
        "require_approval"
    )
    opted_out = Policy.from_dict({**allow_all, "include_defaults": False})
    assert opted_out.decide(refund(read_untrusted=True)).rule == "refunds-ok"


def test_defaults_can_only_tighten_a_policy_a_deny_still_wins():
    p = Policy.from_dict({"rules": [{"name": "no-refunds", "effect": "deny"}]})
    decision = p.decide(refund(read_untrusted=True))
    assert (decision.verdict, decision.rule) == ("deny", "no-refunds")


def test_on_equal_strictness_the_policys_own_approval_rule_decides():
    p = Policy.from_dict(
        {
            "rules": [
                {"name": "supervisor", "effect": "require_approval", "approver_role": "supervisor"}
            ]
        }
    )
    decision = p.decide(refund(read_untrusted=True))
    assert (decision.rule, decision.approver_role) == ("supervisor", "supervisor")


def test_default_rules_count_towards_the_policy_version():
    with_defaults = Policy.from_dict({"name": "p"})
    without = Policy.from_dict({"name": "p", "include_defaults": False})
    assert with_defaults.version_id != without.version_id
    assert len(DEFAULT_RULES) == 2
