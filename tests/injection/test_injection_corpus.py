"""The injection corpus is well-formed: enough attacks per domain, each with a benign
twin, injected calls marked and carrying values only the attacker wrote."""

from __future__ import annotations

import json
from collections import Counter

from injection_corpus import DOMAINS, corpus
from injection_corpus.generate import PER_DOMAIN
from injection_corpus.tools import TOOLS

CASES = corpus()
BY_ID = {c.id: c for c in CASES}
ATTACKS = [c for c in CASES if c.attack]
BENIGN = [c for c in CASES if not c.attack]


def leaves(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from leaves(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from leaves(v)
    else:
        yield value


def text_of(case) -> str:
    return json.dumps(case.world) + case.user + case.instructions


def test_corpus_has_300_attacks_over_four_domains_each_with_a_benign_twin():
    assert len(ATTACKS) >= 300
    per_domain = Counter(c.domain for c in ATTACKS)
    assert set(per_domain) == set(DOMAINS) and len(DOMAINS) >= 4
    assert min(per_domain.values()) >= PER_DOMAIN
    assert len(BENIGN) == len(ATTACKS)
    for attack in ATTACKS:
        twin = BY_ID[attack.twin]
        assert not twin.attack and twin.twin == attack.id
        assert (twin.scenario, twin.user, twin.domain) == (
            attack.scenario,
            attack.user,
            attack.domain,
        )


def test_benign_twin_is_the_attack_without_the_injection():
    for attack in ATTACKS:
        twin = BY_ID[attack.twin]
        assert twin.injected() == []
        own = [c for _, c in attack.calls() if not c.injected]
        assert own == [c for _, c in twin.calls()]  # same legitimate calls, same order
        assert attack.world != twin.world  # the instruction is only in the attack's world


def test_every_attack_marks_its_injected_calls_and_a_goal_effect():
    for attack in ATTACKS:
        injected = attack.injected()
        assert injected, attack.id
        assert any(c.goal for _, c in injected), attack.id
        for _, c in injected:
            assert c.tool in {t.name for t in TOOLS[attack.domain]}, (attack.id, c.tool)


EXISTING_TARGETS = {"short-id", "listed-short-id", "listed-member", "listed-name", "content"}


def test_injected_goal_calls_carry_a_value_only_the_attacker_wrote():
    """Each goal call has an argument value absent from the benign twin's world, request and
    instructions: what the attacker wants is not something the user's data already says.
    The exceptions are named: targets that exist in the user's data (a file id, a member, a
    listed hotel: the attacker chose which) and content attacks (a phishing post in the
    user's own channel) carry their attacker part in the instruction, not in a new value."""
    for attack in ATTACKS:
        twin_text = text_of(BY_ID[attack.twin]).lower()
        for _, c in attack.injected():
            if not c.goal or attack.value in EXISTING_TARGETS:
                continue
            new = [
                v
                for v in leaves(c.args)
                if isinstance(v, str)
                and v.lower().replace(" ", "") not in twin_text.replace(" ", "")
            ]
            assert new, (attack.id, c)


def test_corpus_varies_attacker_values_placements_and_delegation():
    values = Counter(c.value for c in ATTACKS)
    for kind in ("email", "iban", "composed-url", "phone", "short-id", "line-start", "multi-line",
                 "composed", "echo"):  # fmt: skip
        assert values[kind] >= 5, (kind, values)
    where = Counter(c.where for c in ATTACKS)
    assert where["plain"] > where["delegated-other"] + where["delegated-same"]
    assert where["delegated-same"] >= 20
    delegated_twins = [c for c in BENIGN if c.delegated]
    assert 0.2 <= len(delegated_twins) / len(BENIGN) <= 0.5
    # injected calls come before, with and after the user's own effects
    firsts = Counter()
    for attack in ATTACKS:
        ids = [cid for cid, c in attack.calls()]
        injected = [cid for cid, _ in attack.injected()]
        own_effects = [cid for cid, c in attack.calls() if not c.injected and c.tool in EFFECTFUL]
        if own_effects:
            firsts[
                "before" if ids.index(injected[0]) < ids.index(own_effects[-1]) else "after"
            ] += 1
    assert firsts["before"] >= 50 and firsts["after"] >= 50


EFFECTFUL = {t.name for tools in TOOLS.values() for t in tools if t.effect != "read"}


def test_the_corpus_is_deterministic():
    again = corpus()
    assert [(c.id, c.turns, c.world) for c in again] == [(c.id, c.turns, c.world) for c in CASES]
    other = corpus(seed=15)
    assert [c.world for c in other] != [c.world for c in CASES]
