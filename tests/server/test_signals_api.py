"""`POST /api/runs/{id}/signals/{name}`: a signal with a JSON payload wakes the run waiting
for it; keys are tenant-scoped (another tenant's run is a 404), readers cannot signal, and
a finished run answers 409."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from server_helpers import Running, start_server, submit, wait_for

WAIT_AGENTS = str(Path(__file__).with_name("wait_agents.py"))


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Running]:
    folder = tmp_path_factory.mktemp("signals")
    running, stop = start_server(str(folder / "bosun.db"), agents=[f"{WAIT_AGENTS}:signalled"])
    try:
        yield running
    finally:
        stop()


def test_a_signal_wakes_the_waiting_run_with_its_payload(server: Running):
    with server.admin() as c:
        run_id = submit(c, "signalled", "wait for the mail")
        wait_for(c, run_id, {"waiting"})
        r = c.post(f"/api/runs/{run_id}/signals/mail", json={"from": "ana", "ok": True})
        assert r.status_code == 200, r.text
        assert r.json()["wait_id"]
        wait_for(c, run_id, {"succeeded"})
        events = c.get(f"/api/runs/{run_id}/events").json()
    resolved = [e for e in events if e["kind"] == "wait_resolved"]
    assert len(resolved) == 1 and resolved[0]["result"] == {"from": "ana", "ok": True}


def test_a_finished_run_answers_409(server: Running):
    with server.admin() as c:
        run_id = submit(c, "signalled", "wait")
        wait_for(c, run_id, {"waiting"})
        assert c.post(f"/api/runs/{run_id}/cancel").json()["cancel_requested"]
        wait_for(c, run_id, {"cancelled"})
        r = c.post(f"/api/runs/{run_id}/signals/mail", json={})
    assert r.status_code == 409 and "cancelled" in r.json()["detail"]


def test_other_tenants_runs_are_404_and_readers_cannot_signal(server: Running):
    with server.admin() as c:
        run_id = submit(c, "signalled", "wait")
        wait_for(c, run_id, {"waiting"})
    with server.client(server.key("other", "operator")) as other:
        r = other.post(f"/api/runs/{run_id}/signals/mail", json={"x": 1})
        assert r.status_code == 404
    admin_tenant = "default"
    with server.client(server.key(admin_tenant, "viewer")) as viewer:
        assert viewer.post(f"/api/runs/{run_id}/signals/mail", json={}).status_code == 403
    with server.client() as anonymous:
        assert anonymous.post(f"/api/runs/{run_id}/signals/mail", json={}).status_code == 401
    with server.admin() as c:
        assert c.get(f"/api/runs/{run_id}").json()["status"] == "waiting"  # nobody woke it
        assert c.post(f"/api/runs/{run_id}/signals/mail").status_code == 200  # no body: null
        wait_for(c, run_id, {"succeeded"})
