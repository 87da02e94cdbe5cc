"""Edited approvals through the HTTP API: refused with the rule, the approval still pending."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from server_helpers import AGENTS, Running, start_server, submit, wait_for

PAYER = f"{Path(__file__).with_name('payment_agents.py')}:payer"


@pytest.fixture(scope="module")
def pay_server(tmp_path_factory) -> Iterator[Running]:
    folder = tmp_path_factory.mktemp("pay")
    running, stop = start_server(str(folder / "bosun.db"), agents=[*AGENTS, PAYER])
    try:
        yield running
    finally:
        stop()


def pending_payment(c) -> tuple[str, str]:
    run_id = submit(c, "payer", "pay ana 50")
    wait_for(c, run_id, {"waiting_approval"})
    [approval] = c.get("/api/approvals", params={"run_id": run_id}).json()
    return run_id, approval["approval_id"]


def test_a_forbidden_edit_is_403_with_the_rule_and_stays_pending(pay_server: Running):
    with pay_server.admin() as c:
        run_id, approval_id = pending_payment(c)
        r = c.post(
            f"/api/approvals/{approval_id}/approve",
            json={"arguments": {"to": "ana", "amount": 99999}},
        )
        assert r.status_code == 403, r.text
        assert r.json()["rule"] == "no-big-payments"
        assert "no-big-payments" in r.json()["detail"]
        [still] = c.get("/api/approvals", params={"run_id": run_id}).json()
        assert still["status"] == "pending"

        r = c.post(f"/api/approvals/{approval_id}/approve", json={"arguments": {"to": "ana"}})
        assert r.status_code == 422 and r.json()["rule"] == "schema"

        r = c.post(
            f"/api/approvals/{approval_id}/approve", json={"arguments": {"to": "ana", "amount": 45}}
        )
        assert r.status_code == 200, r.text
        run = wait_for(c, run_id, {"succeeded"})
        events = c.get(f"/api/runs/{run_id}/events").json()
    assert run["status"] == "succeeded"
    [finished] = [e for e in events if e["kind"] == "tool_finished"]
    assert finished["result"] == {"paid": 45.0, "to": "ana"}


def test_an_edit_that_needs_a_stronger_role_is_refused_for_a_plain_approver(pay_server: Running):
    approver = pay_server.key("default", "approver", "plain-approver")
    with pay_server.admin() as admin:
        run_id, approval_id = pending_payment(admin)
    with pay_server.client(approver) as c:
        r = c.post(
            f"/api/approvals/{approval_id}/approve", json={"arguments": {"to": "ana", "amount": 90}}
        )
    assert r.status_code == 403, r.text
    assert r.json()["rule"] == "supervisor-above-80" and "supervisor" in r.json()["detail"]
    with pay_server.admin() as admin:
        r = admin.post(
            f"/api/approvals/{approval_id}/approve", json={"arguments": {"to": "ana", "amount": 90}}
        )
        assert r.status_code == 200, r.text
        assert wait_for(admin, run_id, {"succeeded"})["status"] == "succeeded"
