"""Policies decide every proposed tool call: ordered rules, CEL conditions, built-in safety."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from bosun.errors import SpecError
from bosun.govern.decision import ActionContext
from bosun.govern.policy import Policy, Rule

SUPPORT_POLICY = """\
name: support-policy
version: "3"
rules:
  - name: big-refunds-need-a-supervisor
    agents: [support]
    tools: [issue_refund]
    effects: [irreversible]
    autonomy: [auto, auto_notify]
    when: args.amount > 100.0
    effect: require_approval
    approver_role: supervisor
    expires_after: 3600
    on_expiry: escalate
    escalate_to: risk-officer
    reason: Refunds above 100 need a supervisor.
  - name: no-deletes
    tools: ["delete_*"]
    effect: deny
    reason: Nothing is ever deleted by an agent.
visibility:
  support: [lookup_order, check_refund_policy, issue_refund, send_reply]
default_effect: allow
"""


def action(tool: str = "issue_refund", **fields: Any) -> ActionContext:
    base: dict[str, Any] = {
        "agent": "support",
        "tool": tool,
        "effect": "irreversible",
        "autonomy": "auto",
        "args": {},
    }
    base.update(fields)
    return ActionContext(**base)


def policy(*rules: dict[str, Any], **fields: Any) -> Policy:
    return Policy.model_validate({"name": "p", "rules": list(rules), **fields})


def write(folder: Path, text: str, name: str = "policy.yaml") -> str:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return str(path)


# -- effects and order ---------------------------------------------------------


@pytest.mark.parametrize("effect", ["allow", "deny", "require_approval", "shadow", "notify"])
def test_every_rule_effect_is_the_decision_when_the_rule_matches(effect):
    decision = policy({"name": "r", "tools": ["send_reply"], "effect": effect}).decide(
        action("send_reply", effect="write")
    )
    assert decision.verdict == effect
    assert decision.rule == "r"


def test_require_approval_carries_role_expiry_and_escalation(tmp_path):
    p = Policy.from_file(write(tmp_path, SUPPORT_POLICY))
    decision = p.decide(action(args={"amount": 150.0}))
    assert decision.verdict == "require_approval"
    assert decision.rule == "big-refunds-need-a-supervisor"
    assert decision.reason == "Refunds above 100 need a supervisor."
    assert decision.approver_role == "supervisor"
    assert decision.expires_after == 3600
    assert decision.on_expiry == "escalate" and decision.escalate_to == "risk-officer"


def test_approver_role_defaults_to_approver():
    decision = policy({"name": "r", "effect": "require_approval"}).decide(action())
    assert decision.approver_role == "approver"
    assert decision.on_expiry == "deny" and decision.expires_after is None


def test_first_matching_rule_decides():
    p = policy(
        {"name": "first", "tools": ["issue_refund"], "effect": "notify"},
        {"name": "second", "tools": ["issue_refund"], "effect": "deny"},
    )
    assert p.decide(action()).rule == "first"


def test_a_rule_whose_condition_is_false_lets_the_next_rule_decide():
    p = policy(
        {"name": "big", "when": "args.amount > 100", "effect": "deny"},
        {"name": "rest", "effect": "notify"},
    )
    assert p.decide(action(args={"amount": 50})).rule == "rest"
    assert p.decide(action(args={"amount": 500})).rule == "big"


def test_default_effect_applies_when_no_rule_matches():
    p = policy({"name": "r", "tools": ["other"], "effect": "allow"}, default_effect="deny")
    decision = p.decide(action("send_reply", effect="write"))
    assert (decision.verdict, decision.rule) == ("deny", "default")
    assert policy().decide(action("send_reply", effect="write")).verdict == "allow"


# -- filters ------------------------------------------------------------------


def test_tool_and_agent_filters_accept_globs():
    p = policy(
        {"name": "deletes", "agents": ["support-*"], "tools": ["delete_*"], "effect": "deny"}
    )
    assert p.decide(action("delete_order", agent="support-eu", effect="write")).verdict == "deny"
    assert p.decide(action("delete_order", agent="billing", effect="write")).verdict == "allow"
    assert p.decide(action("update_order", agent="support-eu", effect="write")).verdict == "allow"


def test_effect_and_autonomy_filters():
    p = policy({"name": "irr", "effects": ["irreversible"], "autonomy": ["auto"], "effect": "deny"})
    assert p.decide(action(effect="irreversible", autonomy="auto")).verdict == "deny"
    assert p.decide(action(effect="write", autonomy="auto")).verdict == "allow"
    assert p.decide(action(effect="irreversible", autonomy="suggest")).verdict == "allow"


def test_a_single_name_is_short_for_a_list():
    rule = Rule(name="r", tools="issue_refund", effect="deny")  # type: ignore[arg-type]
    assert rule.tools == ("issue_refund",)


def test_rules_in_python_decide_like_rules_in_yaml(tmp_path):
    from_yaml = Policy.from_file(write(tmp_path, SUPPORT_POLICY))
    in_python = Policy(
        name="support-policy",
        version="3",
        rules=from_yaml.rules,
        visibility={
            "support": ("lookup_order", "check_refund_policy", "issue_refund", "send_reply")
        },
    )
    ctx = action(args={"amount": 150.0})
    assert in_python.decide(ctx) == from_yaml.decide(ctx)


# -- CEL conditions -----------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "fields", "expected"),
    [
        ("args.amount > 100.0", {"args": {"amount": 150}}, True),
        ("args.amount > 100.0", {"args": {"amount": 99.5}}, False),
        ("args['order id'] == 'A-1'", {"args": {"order id": "A-1"}}, True),
        ("tags.ticket == '4821'", {"tags": {"ticket": "4821"}}, True),
        ("user == 'alice'", {"user": "alice"}, True),
        ("user == ''", {}, True),
        ("tenant == 'acme' && session == 's1'", {"tenant": "acme", "session": "s1"}, True),
        ("spend >= 2.5", {"spend": 3}, True),
        ("spend >= 2.5", {"spend": 1.0}, False),
        ("read_untrusted", {"read_untrusted": True}, True),
        ("'to' in tainted_args", {"tainted_args": ("to",)}, True),
        ("size(tainted_args) > 0", {}, False),
        ("size(args) > 1", {"args": {"a": 1, "b": 2}}, True),
        ("args.items.all(i, i.qty < 5)", {"args": {"items": [{"qty": 1}, {"qty": 4}]}}, True),
        ("args.to.endsWith('@example.com')", {"args": {"to": "x@example.com"}}, True),
        ("has(args.note)", {"args": {"amount": 1}}, False),
    ],
)
def test_conditions_read_the_action_context(when, fields, expected):
    p = policy({"name": "r", "when": when, "effect": "notify"})
    assert (p.decide(action(effect="write", **fields)).verdict == "notify") is expected


def test_arguments_cel_cannot_represent_are_compared_in_their_json_form():
    import datetime

    p = policy({"name": "r", "when": "args.day == '2024-05-01'", "effect": "deny"})
    assert p.decide(action(args={"day": datetime.date(2024, 5, 1)})).verdict == "deny"


def test_a_condition_error_makes_an_allow_rule_not_match():
    p = policy({"name": "r", "when": "args.amount > 1", "effect": "allow"}, default_effect="notify")
    decision = p.decide(action(args={}))
    assert (decision.verdict, decision.rule) == ("notify", "default")


@pytest.mark.parametrize("effect", ["deny", "require_approval"])
def test_a_condition_error_in_a_deny_or_approval_rule_fails_closed(effect):
    p = policy({"name": "guard", "when": "args.amount > 100", "effect": effect})
    decision = p.decide(action(args={"amount_usd": 5000}))
    assert (decision.verdict, decision.rule) == (effect, "guard")
    assert "fails closed" in decision.reason and "amount" in decision.reason


def test_a_condition_that_is_not_a_boolean_is_an_error():
    p = policy({"name": "r", "when": "args.amount", "effect": "deny"})
    decision = p.decide(action(args={"amount": 3}))
    assert decision.verdict == "deny" and "not true or false" in decision.reason


# -- built-in safety and visibility ---------------------------------------------


def test_unknown_tool_is_denied_whatever_the_rules_say():
    p = policy({"name": "anything", "effect": "allow"})
    decision = p.decide(action("launch_missiles", tool_known=False))
    assert (decision.verdict, decision.rule) == ("deny", "builtin:unknown-tool")


def test_unknown_effect_class_is_denied():
    p = policy({"name": "anything", "effect": "allow"})
    decision = p.decide(action(effect="unknown"))
    assert (decision.verdict, decision.rule) == ("deny", "builtin:unknown-effect")


def test_visibility_limits_the_tools_an_agent_sees_and_may_call(tmp_path):
    p = Policy.from_file(write(tmp_path, SUPPORT_POLICY))
    visible = p.visible_tools("support")
    assert visible is not None
    assert "issue_refund" in visible and "drop_database" not in visible
    assert p.visible_tools("billing") is None  # not listed: sees every tool it has
    decision = p.decide(action("drop_database", effect="write"))
    assert (decision.verdict, decision.rule) == ("deny", "builtin:not-visible")
    assert p.decide(action("drop_database", agent="billing", effect="write")).verdict == "allow"


def test_visibility_accepts_globs_for_agents_and_tools():
    p = policy(visibility={"support-*": ["lookup_*"], "support-eu": ["send_reply"]})
    assert p.visible("support-us", "lookup_order")
    assert not p.visible("support-us", "send_reply")
    assert p.visible("support-eu", "send_reply")  # an exact key wins over a glob
    assert not p.visible("support-eu", "lookup_order")


# -- versions -----------------------------------------------------------------


def test_policy_version_names_the_policy_and_changes_with_its_content(tmp_path):
    p = Policy.from_file(write(tmp_path, SUPPORT_POLICY))
    assert p.version_id.startswith("support-policy@3+")
    assert p.decide(action(args={"amount": 1})).policy_version == p.version_id
    same = Policy.from_file(write(tmp_path, SUPPORT_POLICY, "copy.yaml"))
    assert same.version_id == p.version_id
    assert same == p
    changed = Policy.from_file(
        write(tmp_path, SUPPORT_POLICY.replace("100.0", "200.0"), "changed.yaml")
    )
    assert changed.version_id != p.version_id
    assert changed.version_id.startswith("support-policy@3+")


def test_numeric_yaml_version_is_text(tmp_path):
    p = Policy.from_file(write(tmp_path, "name: p\nversion: 3\n"))
    assert p.version == "3"


# -- malformed policies name file, line and field ---------------------------------


@pytest.mark.parametrize(
    ("text", "line", "field", "words"),
    [
        (
            "name: p\nrules:\n  - name: r\n    effect: block\n",
            4,
            "rules[0].effect",
            "'allow', 'deny'",
        ),
        (
            "name: p\nrules:\n  - name: r\n    effect: deny\n    tools: []\n",
            5,
            "rules[0].tools",
            "empty list",
        ),
        (
            "name: p\nrules:\n  - name: r\n    effect: deny\n    effects: [delete]\n",
            5,
            "rules[0].effects[0]",
            "'read', 'write' or 'irreversible', got 'delete'",
        ),
        (
            "name: p\nrules:\n  - name: r\n    efect: deny\n",
            4,
            "rules[0].efect",
            "unknown field; did you mean `effect`?",
        ),
        ("name: p\ndefault_effect: maybe\n", 2, "default_effect", "'allow'"),
        (
            "name: p\nrules:\n  - name: r\n    effect: deny\n    expires_after: -5\n",
            5,
            "rules[0].expires_after",
            "greater than 0",
        ),
    ],
)
def test_malformed_policy_errors_name_file_line_and_field(tmp_path, text, line, field, words):
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as err:
        Policy.from_file(path)
    message = str(err.value)
    assert f"policy file {path}, line {line}: `{field}`" in message
    assert words in message


def test_cel_syntax_error_is_a_load_error_naming_the_rule_and_line(tmp_path):
    path = write(
        tmp_path,
        """\
        name: p
        rules:
          - name: fine
            effect: allow
          - name: broken-refund-rule
            tools: [issue_refund]
            when: args.amount >
            effect: deny
        """,
    )
    with pytest.raises(SpecError) as err:
        Policy.from_file(path)
    message = str(err.value)
    assert f"policy file {path}, line 7: `rules[1].when`" in message
    assert "rule 'broken-refund-rule'" in message and "not valid CEL" in message
    assert "column 14" in message


def test_unknown_cel_variable_is_a_load_error(tmp_path):
    path = write(
        tmp_path, "name: p\nrules:\n  - name: r\n    when: arg.amount > 1\n    effect: deny\n"
    )
    with pytest.raises(
        SpecError, match=r"line 4: `rules\[0\]\.when`: rule 'r'.*unknown variable 'arg'"
    ):
        Policy.from_file(path)


def test_comprehension_variables_are_not_unknown():
    policy({"name": "r", "when": "args.lines.exists(l, l.sku == 'X')", "effect": "deny"})


def test_approval_fields_on_other_effects_are_rejected_with_the_rule_line(tmp_path):
    path = write(
        tmp_path,
        "name: p\nrules:\n  - name: r\n    effect: deny\n    approver_role: boss\n",
    )
    with pytest.raises(SpecError, match=r"line 3: `rules\[0\]`: rule 'r': approver_role only"):
        Policy.from_file(path)


def test_escalation_needs_a_target_and_an_expiry():
    with pytest.raises(SpecError, match="needs `escalate_to`"):
        Policy.from_dict(
            {"rules": [{"name": "r", "effect": "require_approval", "on_expiry": "escalate"}]}
        )
    with pytest.raises(SpecError, match="needs `expires_after`"):
        Policy.from_dict(
            {
                "rules": [
                    {
                        "name": "r",
                        "effect": "require_approval",
                        "on_expiry": "escalate",
                        "escalate_to": "boss",
                    }
                ]
            }
        )


def test_rule_names_are_unique_and_not_reserved():
    with pytest.raises(SpecError, match="both named 'r'"):
        Policy.from_dict(
            {"rules": [{"name": "r", "effect": "deny"}, {"name": "r", "effect": "allow"}]}
        )
    with pytest.raises(SpecError, match="reserved"):
        Policy.from_dict({"rules": [{"name": "builtin:mine", "effect": "deny"}]})


def test_from_dict_errors_name_the_field_and_the_source():
    with pytest.raises(SpecError) as err:
        Policy.from_dict({"rules": [{"name": "r", "effect": "nope"}]}, source="agent support")
    assert "agent support: `rules[0].effect`" in str(err.value)


def test_invalid_yaml_and_missing_files_are_spec_errors(tmp_path):
    with pytest.raises(SpecError, match=r"line 2: invalid YAML"):
        Policy.from_file(write(tmp_path, "name: p\nrules: [a: b: c]\n"))
    with pytest.raises(SpecError, match="expected a mapping"):
        Policy.from_file(write(tmp_path, "- just a list\n", "list.yaml"))
    with pytest.raises(SpecError, match="cannot read policy file"):
        Policy.from_file(str(tmp_path / "missing.yaml"))


# -- explain --------------------------------------------------------------------


def test_explain_lists_every_rule_with_its_outcome(tmp_path):
    p = Policy.from_file(write(tmp_path, SUPPORT_POLICY))
    results = {r.rule: r for r in p.explain(action(args={"amount": 150.0}))}
    assert results["builtin:unknown-tool"].outcome == "skipped"
    assert results["default:undeclared-irreversible-from-untrusted"].outcome == "false"
    chosen = results["big-refunds-need-a-supervisor"]
    assert chosen.outcome == "matched" and chosen.decided
    assert "args.amount > 100.0" in chosen.detail
    assert results["no-deletes"].outcome == "skipped"
    assert "not in [delete_*]" in results["no-deletes"].detail
    assert results["default"].outcome == "skipped"
    assert sum(r.decided for r in results.values()) == 1


def test_explain_reports_condition_errors_and_whether_they_fail_closed():
    p = policy(
        {"name": "soft", "when": "args.x > 1", "effect": "notify"},
        {"name": "hard", "when": "args.x > 1", "effect": "deny"},
    )
    results = {r.rule: r for r in p.explain(action(args={}))}
    assert results["soft"].outcome == "error" and "does not match" in results["soft"].detail
    assert results["hard"].outcome == "error" and "fails closed" in results["hard"].detail
    assert results["hard"].decided and not results["default"].decided


def test_explain_marks_the_default_when_nothing_matches():
    p = policy({"name": "r", "agents": ["billing"], "effect": "deny"})
    results = {r.rule: r for r in p.explain(action("send_reply", effect="write"))}
    assert results["r"].outcome == "skipped" and "agent 'support'" in results["r"].detail
    assert results["default"].outcome == "matched" and results["default"].decided


# -- speed ------------------------------------------------------------------------


def test_decisions_are_cached_per_combination_but_conditions_are_evaluated_each_time():
    p = policy(
        {"name": "big", "tools": ["issue_refund"], "when": "args.amount > 100", "effect": "deny"}
    )
    assert p.decide(action(args={"amount": 500})).verdict == "deny"
    assert p.decide(action(args={"amount": 5})).verdict == "allow"
    assert p.decide(action(args={"amount": 500})).verdict == "deny"


def test_conditions_see_every_argument_when_they_read_the_whole_map():
    p = policy(
        {"name": "narrow", "when": "args.amount > 100", "effect": "notify"},
        {"name": "whole", "when": "'note' in args", "effect": "deny"},
    )
    assert p.decide(action(args={"amount": 1, "note": "x"})).rule == "whole"
