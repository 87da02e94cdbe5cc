"""The shipped profiles: v2 holds calls whose sinks the user did not supply; strict adds the
blanket rule; legacy is exactly the rules shipped before v2."""

from __future__ import annotations

from typing import Any

from bosun.govern.decision import ActionContext
from bosun.govern.defaults import DEFAULT_RULES, PROFILES, default_policy
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


SUSPECT = {"declares_sinks": True, "sinks": {"to": "egress"}, "suspect_args": ("to",)}


def test_v2_lets_an_irreversible_call_through_after_untrusted_content_when_its_sinks_are_clean():
    assert default_policy().decide(refund(read_untrusted=True)).verdict == "allow"
    clean = {**SUSPECT, "suspect_args": (), "read_untrusted": True}
    assert default_policy().decide(refund(**clean)).verdict == "allow"


def test_v2_holds_a_call_with_a_suspect_sink_whatever_its_effect():
    for effect in ("read", "write", "irreversible"):
        decision = default_policy().decide(refund(effect=effect, **SUSPECT))
        assert decision.verdict == "require_approval", effect
        assert decision.rule == "default:sink-not-from-user"
        assert decision.approver_role == "approver"


def test_v2_holds_an_irreversible_call_of_a_tool_without_sinks_fed_by_untrusted_content():
    decision = default_policy().decide(refund(args_from_untrusted=("amount",)))
    assert decision.rule == "default:undeclared-irreversible-from-untrusted"
    assert default_policy().decide(refund(effect="write", args_from_untrusted=("x",))).verdict == (
        "allow"
    )


def test_strict_adds_the_blanket_rule():
    decision = default_policy("strict").decide(refund(read_untrusted=True))
    assert decision.verdict == "require_approval"
    assert decision.rule == "default:irreversible-after-untrusted-content"
    assert default_policy("strict").decide(refund(**SUSPECT)).rule == "default:sink-not-from-user"


def test_legacy_is_exactly_the_two_rules_shipped_before_v2():
    assert [r["name"] for r in PROFILES["legacy"]] == [
        "default:argument-from-untrusted-content",
        "default:irreversible-after-untrusted-content",
    ]
    legacy = Policy.from_dict({"profile": "legacy"})
    assert legacy.decide(refund(read_untrusted=True)).rule == (
        "default:irreversible-after-untrusted-content"
    )
    assert legacy.decide(refund(tainted_args=("amount",))).rule == (
        "default:argument-from-untrusted-content"
    )
    assert legacy.decide(refund(effect="write", read_untrusted=True)).verdict == "allow"


def test_an_unknown_profile_is_a_clear_error():
    import pytest

    from bosun.errors import SpecError

    with pytest.raises(SpecError, match="profile"):
        Policy.from_dict({"profile": "paranoid"})


def test_defaults_leave_clean_runs_and_reversible_tools_alone():
    for profile in ("default", "strict", "legacy"):
        p = default_policy(profile)
        assert p.decide(refund()).verdict == "allow"
        assert p.decide(refund(effect="write", read_untrusted=True)).verdict == "allow"
        assert p.decide(refund(effect="read", tainted_args=("order",))).verdict == "allow"


def test_every_policy_includes_the_defaults_unless_it_opts_out():
    allow_all = {"name": "p", "rules": [{"name": "refunds-ok", "effect": "allow"}]}
    assert Policy.from_dict(allow_all).decide(refund(**SUSPECT)).verdict == ("require_approval")
    opted_out = Policy.from_dict({**allow_all, "include_defaults": False})
    assert opted_out.decide(refund(**SUSPECT)).rule == "refunds-ok"


def test_defaults_can_only_tighten_a_policy_a_deny_still_wins():
    p = Policy.from_dict({"rules": [{"name": "no-refunds", "effect": "deny"}]})
    decision = p.decide(refund(**SUSPECT))
    assert (decision.verdict, decision.rule) == ("deny", "no-refunds")


def test_on_equal_strictness_the_policys_own_approval_rule_decides():
    p = Policy.from_dict(
        {
            "rules": [
                {"name": "supervisor", "effect": "require_approval", "approver_role": "supervisor"}
            ]
        }
    )
    decision = p.decide(refund(**SUSPECT))
    assert (decision.rule, decision.approver_role) == ("supervisor", "supervisor")


def test_default_rules_and_the_profile_count_towards_the_policy_version():
    with_defaults = Policy.from_dict({"name": "p"})
    without = Policy.from_dict({"name": "p", "include_defaults": False})
    strict = Policy.from_dict({"name": "p", "profile": "strict"})
    assert len({with_defaults.version_id, without.version_id, strict.version_id}) == 3
    assert len(DEFAULT_RULES) == 2
