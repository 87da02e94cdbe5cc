"""`bosun policy check` says which rule decides an action and why, rule by rule."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from bosun.govern.policy_check import add_arguments, check_command

POLICY = """\
name: support-policy
version: "3"
rules:
  - name: big-refunds-need-a-supervisor
    tools: [issue_refund]
    when: args.amount > 100.0
    effect: require_approval
    approver_role: supervisor
    expires_after: 3600
    reason: Refunds above 100 need a supervisor.
  - name: no-deletes
    tools: ["delete_*"]
    effect: deny
"""


@pytest.fixture
def policy_file(tmp_path: Path) -> str:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return str(path)


def check(*argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="bosun policy check")
    add_arguments(parser)
    return check_command(parser.parse_args(list(argv)))


def test_check_explains_the_matching_rule_and_exits_1_when_the_action_would_not_run(
    policy_file,
):
    code, text = check(
        policy_file,
        "--agent", "support",
        "--tool", "issue_refund",
        "--effect", "irreversible",
        "--args", '{"amount": 150}',
    )  # fmt: skip
    assert code == 1
    assert "support-policy@3+" in text
    assert "big-refunds-need-a-supervisor" in text and "`args.amount > 100.0` is true" in text
    assert "-> " in text  # the deciding rule is marked
    assert "no-deletes" in text and "not in [delete_*]" in text
    assert "role supervisor, expires after 3600s, then denied" in text
    assert "final verdict    REQUIRE_APPROVAL: Refunds above 100 need a supervisor." in text


def test_check_exits_0_when_the_action_would_run(policy_file):
    code, text = check(policy_file, "--agent", "support", "--tool", "send_reply")
    assert code == 0
    assert "policy verdict   allow by default" in text
    assert "final verdict    ALLOW" in text


def test_check_shows_what_autonomy_made_of_the_verdict(policy_file):
    code, text = check(
        policy_file, "--agent", "support", "--tool", "send_reply", "--autonomy", "suggest"
    )
    assert code == 1
    assert "autonomy         suggest: require_approval by autonomy:suggest" in text


def test_check_passes_run_context_to_the_rules(policy_file):
    code, text = check(
        policy_file,
        "--agent", "support",
        "--tool", "issue_refund",
        "--effect", "irreversible",
        "--args", '{"amount": 10}',
        "--read-untrusted",
        "--user", "alice",
        "--tag", "ticket=4821",
        "--sink", "account=egress",
        "--origin", "account=untrusted",
    )  # fmt: skip
    assert code == 1
    assert "default:sink-not-from-user" in text and "suspect_args=['account']" in text
    assert "user=alice" in text and '"ticket": "4821"' in text


def test_check_reports_unknown_tools_and_effects(policy_file):
    code, text = check(policy_file, "--agent", "a", "--tool", "t", "--effect", "destroy")
    assert code == 1 and "builtin:unknown-effect" in text
    code, text = check(policy_file, "--agent", "a", "--tool", "t", "--unknown-tool")
    assert code == 1 and "DENY" in text


def test_check_exits_2_on_a_bad_policy_or_bad_arguments(tmp_path, policy_file):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: p\nrules:\n  - name: r\n    effect: nope\n")
    code, text = check(str(bad), "--agent", "a", "--tool", "t")
    assert code == 2 and "line 4" in text and "rules[0].effect" in text
    code, text = check(policy_file, "--agent", "a", "--tool", "t", "--args", "{not json")
    assert code == 2 and "--args is not valid JSON" in text
