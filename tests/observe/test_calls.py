"""The one projection of tool calls (`bosun.journal.calls`): what each edge shows of a
call, from the events a journal holds, in the order they were written."""

from __future__ import annotations

from bosun.journal.calls import CallFold, calls
from bosun.journal.events import (
    ApprovalRequested,
    ApprovalResolved,
    CompensationMissing,
    PolicyDecided,
    ToolCompensated,
    ToolFailed,
    ToolFinished,
    ToolProposed,
    ToolShadowed,
    ToolStarted,
)
from bosun.spec.vocab import CallOutcome


def proposed(call_id: str, tool: str = "refund", step: int = 0) -> ToolProposed:
    return ToolProposed(step=step, call_id=call_id, tool=tool, arguments='{"amount": 5}', ts=1.0)


def decided(call_id: str, verdict: str, tool: str = "refund") -> PolicyDecided:
    return PolicyDecided(
        call_id=call_id, tool=tool, verdict=verdict, rule="r", reason="why", policy_version="v1"
    )


def journal():
    return list(
        enumerate(
            [
                proposed("a"),
                decided("a", "allow"),
                ToolStarted(call_id="a", tool="refund", attempt=1, idempotency_key="k", ts=2.0),
                ToolStarted(call_id="a", tool="refund", attempt=2, idempotency_key="k", ts=3.0),
                ToolFinished(call_id="a", tool="refund", result={"ok": True}, duration_ms=4.0),
                proposed("b"),
                decided("b", "deny"),
                ToolFailed(call_id="b", tool="refund", error_type="denied", message="no"),
                proposed("c"),
                decided("c", "require_approval"),
                ApprovalRequested(
                    approval_id="ap1",
                    call_id="c",
                    tool="refund",
                    arguments="{}",
                    role="ops",
                    rule="r",
                    reason="big",
                ),
                proposed("d"),
                decided("d", "shadow"),
                ToolShadowed(call_id="d", tool="refund", arguments="{}"),
                proposed("e", step=1),
                decided("e", "allow"),
                ToolStarted(call_id="e", tool="refund", attempt=1, idempotency_key="k"),
                ToolFailed(call_id="e", tool="refund", error_type="Timeout", message="slow"),
                proposed("f", step=1),
                decided("f", "require_approval"),
                ApprovalResolved(
                    approval_id="ap2",
                    call_id="f",
                    decision="approved",
                    decided_by="ann",
                    arguments='{"amount": 1}',
                    comment="less",
                ),
                decided("f", "allow"),
                ToolFinished(call_id="f", tool="refund", result=1, duration_ms=1.0),
                ToolCompensated(call_id="f", tool="refund", undo="unrefund", by="ops"),
                CompensationMissing(call_id="a", tool="refund", by="ops"),
                ToolFinished(call_id="zz", tool="refund", result=1, duration_ms=1.0),  # unseen
            ],
            start=1,
        )
    )


def test_each_call_has_its_outcome_in_the_order_proposed():
    got = calls(journal())
    assert [(c.call_id, c.outcome) for c in got] == [
        ("a", CallOutcome.DONE),
        ("b", CallOutcome.BLOCKED),  # denied before it ran
        ("c", CallOutcome.WAITING),
        ("d", CallOutcome.SHADOWED),
        ("e", CallOutcome.FAILED),
        ("f", CallOutcome.DONE),
    ]


def test_a_call_shows_what_ran_its_attempts_and_its_rollback():
    a, *_, f = calls(journal())
    assert (a.attempts, a.started_at, a.result, a.duration_ms) == (2, 3.0, {"ok": True}, 4.0)
    assert a.as_dict()["compensated"] == ["has no undo: reverse it by hand"]
    assert f.edited and f.arguments == '{"amount": 1}'  # the approver's edit is what ran
    assert f.decision is not None and f.decision.verdict == "allow"  # decided again
    assert f.approval_text == "approved by ann with edited arguments: less"
    shown = f.as_dict()
    assert (shown["step"], shown["outcome"], shown["compensated"]) == (
        2, "done", ["undone via unrefund by ops"],
    )  # fmt: skip


def test_a_live_fold_forgets_calls_once_they_end():
    fold = CallFold(forget_ended=True)
    ended = [c.call_id for seq, e in journal() if (c := fold.apply(seq, e)) and c.ended is e]
    assert ended == ["a", "b", "d", "e", "f"]
    assert list(fold.calls) == ["c"]  # only the call still waiting is held
