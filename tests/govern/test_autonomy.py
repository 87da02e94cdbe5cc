"""Autonomy levels change what an allowed action does; they never loosen a verdict."""

from __future__ import annotations

from typing import Any

import pytest

from bosun.errors import SpecError
from bosun.govern.autonomy import apply_autonomy, effective_autonomy
from bosun.govern.decision import ActionContext, Decision
from bosun.govern.policy import Policy


def action(autonomy: str, effect: str = "write", **fields: Any) -> ActionContext:
    return ActionContext(
        agent="support", tool="send_reply", effect=effect, autonomy=autonomy, args={}, **fields
    )


def verdict(verdict: str) -> Decision:
    return Decision(verdict, "some-rule", "because", "p@1+abc")  # type: ignore[arg-type]


def governed(autonomy: str, effect: str = "write", policy: Policy | None = None) -> Decision:
    ctx = action(autonomy, effect)
    return apply_autonomy((policy or Policy(name="p")).decide(ctx), ctx)


@pytest.mark.parametrize("effect", ["write", "irreversible"])
def test_observe_records_effectful_actions_instead_of_running_them(effect):
    decision = governed("observe", effect)
    assert (decision.verdict, decision.rule) == ("shadow", "autonomy:observe")
    assert decision.policy_version.startswith("p@1+")


def test_observe_turns_an_approval_into_a_shadow_too():
    decision = apply_autonomy(verdict("require_approval"), action("observe"))
    assert decision.verdict == "shadow"


def test_observe_lets_reads_through():
    assert governed("observe", "read").verdict == "allow"


@pytest.mark.parametrize("start", ["allow", "notify"])
def test_suggest_makes_every_effectful_action_need_approval(start):
    decision = apply_autonomy(verdict(start), action("suggest", "irreversible"))
    assert (decision.verdict, decision.rule) == ("require_approval", "autonomy:suggest")
    assert decision.approver_role == "approver"
    assert "some-rule" in decision.reason


def test_suggest_keeps_a_rules_own_approval_with_its_role():
    original = Decision("require_approval", "big", "x", "v", approver_role="supervisor")
    assert apply_autonomy(original, action("suggest")) is original


def test_suggest_lets_reads_through():
    assert governed("suggest", "read").verdict == "allow"


def test_auto_notify_runs_then_notifies():
    decision = governed("auto_notify")
    assert (decision.verdict, decision.rule) == ("notify", "autonomy:auto_notify")
    assert governed("auto_notify", "read").verdict == "allow"


def test_auto_keeps_the_policy_verdict():
    original = verdict("allow")
    assert apply_autonomy(original, action("auto")) is original


@pytest.mark.parametrize("level", ["observe", "suggest", "auto_notify", "auto"])
def test_a_deny_stays_a_deny_at_every_level(level):
    original = verdict("deny")
    assert apply_autonomy(original, action(level, "irreversible")) is original


@pytest.mark.parametrize("level", ["suggest", "auto_notify", "auto"])
def test_a_shadow_stays_a_shadow(level):
    assert apply_autonomy(verdict("shadow"), action(level)).verdict == "shadow"


def test_an_unknown_level_denies_effectful_actions():
    decision = apply_autonomy(verdict("allow"), action("yolo"))
    assert (decision.verdict, decision.rule) == ("deny", "autonomy:unknown")


def test_effective_autonomy_is_per_agent_overridable_per_tool():
    overrides = {"issue_refund": "suggest", "lookup_*": "auto"}
    assert effective_autonomy("auto_notify", overrides, "issue_refund") == "suggest"
    assert effective_autonomy("observe", overrides, "lookup_order") == "auto"
    assert effective_autonomy("auto_notify", overrides, "send_reply") == "auto_notify"


def test_an_exact_override_wins_over_a_glob():
    overrides = {"lookup_*": "observe", "lookup_order": "auto"}
    assert effective_autonomy("suggest", overrides, "lookup_order") == "auto"


def test_an_invalid_level_is_a_spec_error():
    with pytest.raises(SpecError, match="'sometimes'"):
        effective_autonomy("sometimes", {}, "send_reply")


def test_rules_can_filter_on_the_effective_autonomy():
    p = Policy.from_dict(
        {"rules": [{"name": "unsupervised", "autonomy": ["auto"], "effect": "notify"}]}
    )
    assert p.decide(action("auto")).verdict == "notify"
    assert p.decide(action("auto_notify")).rule == "default"
