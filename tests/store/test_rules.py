"""The business rules both stores apply (`store/rules.py`), checked without a database:
the stores only fetch the facts and write what these decide."""

from __future__ import annotations

import pytest

from bosun.errors import StoreError
from bosun.spec.vocab import RunStatus
from bosun.store import rules
from bosun.store.records import ApprovalRecord


@pytest.mark.parametrize("status", [RunStatus.WAITING, RunStatus.WAITING_APPROVAL])
def test_a_parked_run_wakes_only_when_nothing_it_waits_on_is_pending(status):
    assert rules.wakes(status, 0)
    assert not rules.wakes(status, 1)


@pytest.mark.parametrize(
    "status",
    [RunStatus.RUNNING, RunStatus.QUEUED, RunStatus.PAUSED, RunStatus.SUCCEEDED, RunStatus.KILLED],
)
def test_a_run_that_is_not_parked_is_never_requeued_by_a_settled_wait(status):
    """A running run sees its settled waits at its next commit; a paused one stays paused
    until a person continues it; a finished one stays finished."""
    assert not rules.wakes(status, 0)


def _approval(**kw) -> ApprovalRecord:
    base = dict(
        id="apr_1",
        run_id="r",
        call_id="c",
        tool="pay",
        arguments="{}",
        role="approver",
        rule="x",
        reason="y",
        status="pending",
        created_at=0.0,
        agent="a",
        tenant="t",
    )
    base.update(kw)
    return ApprovalRecord(**base)


def test_expiry_escalates_only_when_it_names_someone_to_escalate_to():
    assert rules.expiry_outcome(_approval(on_expiry="escalate", escalate_to="cfo")) == "escalated"
    assert rules.expiry_outcome(_approval(on_expiry="escalate", escalate_to=None)) == "expired"
    assert rules.expiry_outcome(_approval(on_expiry="deny")) == "expired"
    with pytest.raises(ValueError):
        rules.expiry_outcome(_approval(status="approved"))


def test_a_person_decides_approve_or_deny_only():
    rules.check_decision("approved")
    with pytest.raises(StoreError):
        rules.check_decision("expired")


def test_escalation_ids_are_stable_so_two_sweeps_make_one_escalation():
    assert rules.escalation_id("apr_1") == rules.escalation_id("apr_1") != "apr_1"
