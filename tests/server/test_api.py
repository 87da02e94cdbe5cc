"""The HTTP API through a real server on 127.0.0.1: submit, watch, approve, cancel, kill,
roll back, aggregate, manage keys. Authorization and isolation: test_authorization.py."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import orjson
import pytest
from server_helpers import Running, log_in, start_server, submit, wait_for

from bosun.store.base import RUN_STATUSES


def test_health_and_readiness_need_no_key(server: Running):
    with server.client() as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        ready = c.get("/readyz").json()
        assert {k: ready[k] for k in ("status", "database", "writes", "workers")} == {
            "status": "ok",
            "database": "ok",
            "writes": "ok",
            "workers": "ok",
        }
        assert ready["worker"]["state"] == "running" and ready["store"]["failing_since"] is None
        schema = c.get("/openapi.json").json()
    assert (
        "/api/runs" in schema["paths"] and "/api/approvals/{approval_id}/approve" in schema["paths"]
    )
    assert not any(p.startswith(("/runs", "/login", "/approvals")) for p in schema["paths"])


def test_a_new_database_prints_one_platform_key_that_works(server: Running):
    assert server.admin_key.startswith("bosun_")
    with server.admin() as c:
        keys = c.get("/api/keys").json()
    assert [(k["role"], k["tenant"], k["name"]) for k in keys][:1] == [
        ("platform", "default", "first admin")
    ]


def test_submitted_run_is_driven_by_the_in_process_worker_to_completion(server: Running):
    with server.admin() as c:
        run_id = submit(c, "quick", "count", user="ana", session="s1", tags={"order": "1234"})
        run = wait_for(c, run_id, {"succeeded"})
        events = c.get(f"/api/runs/{run_id}/events").json()
    assert (run["user"], run["session"], run["tags"], run["tenant"]) == (
        "ana", "s1", {"order": "1234"}, "default",
    )  # fmt: skip
    assert run["steps"] == 2 and run["tool_calls"] == 1 and run["cost"] > 0
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["kind"] == "run_started" and events[-1]["kind"] == "run_finished"


def test_submitting_an_unknown_agent_says_which_agents_are_served(server: Running):
    with server.admin() as c:
        r = c.post("/api/runs", json={"agent": "nope", "input": "x"})
    assert r.status_code == 400
    assert "no agent 'nope'" in r.json()["detail"] and "quick" in r.json()["detail"]


def test_runs_filter_by_agent_status_tag_user_and_time_and_paginate(server: Running):
    with server.admin() as c:
        t0 = time.time()
        ids = [
            submit(c, "quick", f"n{i}", user=f"u{i % 2}", tags={"batch": "pg"}) for i in range(5)
        ]
        for run_id in ids:
            wait_for(c, run_id, {"succeeded"})
        page = c.get("/api/runs", params={"tag": "batch=pg", "limit": 2}).json()
        assert [r["run_id"] for r in page["runs"]] == ids[::-1][:2] and page["next_offset"] == 2
        page2 = c.get("/api/runs", params={"tag": "batch=pg", "limit": 2, "offset": 4}).json()
        assert [r["run_id"] for r in page2["runs"]] == [ids[0]] and page2["next_offset"] is None
        mine = c.get("/api/runs", params={"tag": "batch=pg", "user": "u1"}).json()["runs"]
        assert {r["run_id"] for r in mine} == {ids[1], ids[3]}
        recent = c.get("/api/runs", params={"since": t0, "agent": "quick", "status": "succeeded"})
        assert set(ids) <= {r["run_id"] for r in recent.json()["runs"]}
        assert c.get("/api/runs", params={"until": t0, "tag": "batch=pg"}).json()["runs"] == []
        assert c.get("/api/runs", params={"status": "bogus"}).status_code == 422
        assert c.get("/api/runs", params={"tag": "no-equals"}).status_code == 422


def test_event_stream_sends_every_event_live_then_ends(server: Running):
    with server.admin() as c:
        run_id = submit(c, "slow", "work", tags={"job": "stream"})
        kinds, ids = [], []
        with c.stream("GET", f"/api/runs/{run_id}/stream") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            event = None
            for line in response.iter_lines():
                if line.startswith("id: "):
                    ids.append(int(line[4:]))
                elif line.startswith("event: "):
                    event = line[7:]
                    kinds.append(event)
                    if event == "tool_finished" and kinds.count("tool_finished") == 2:
                        c.post(f"/api/runs/{run_id}/cancel")
                elif line.startswith("data: ") and event == "end":
                    assert orjson.loads(line[6:])["status"] == "cancelled"
                    break
        events = c.get(f"/api/runs/{run_id}/events").json()
    assert ids == [e["seq"] for e in events]  # every event once, in order, none missing
    assert kinds[0] == "run_started" and kinds[-2:] == ["run_finished", "end"]


def test_stream_resumes_after_last_event_id(server: Running):
    with server.admin() as c:
        run_id = submit(c, "quick", "x")
        wait_for(c, run_id, {"succeeded"})
        total = len(c.get(f"/api/runs/{run_id}/events").json())
        with c.stream(
            "GET", f"/api/runs/{run_id}/stream", headers={"Last-Event-ID": str(total - 2)}
        ) as response:
            ids = [int(line[4:]) for line in response.iter_lines() if line.startswith("id: ")]
    assert ids == [total - 1, total]


def test_refund_waits_for_approval_and_continues_with_edited_arguments(server: Running):
    with server.admin() as c:
        run_id = submit(c, "support", "My trail shoes fell apart", tags={"order": "1234"})
        wait_for(c, run_id, {"waiting_approval"})
        [approval] = c.get("/api/approvals", params={"run_id": run_id}).json()
        assert approval["tool"] == "issue_refund" and approval["status"] == "pending"
        assert approval["rule"] == "refunds-over-50-need-a-supervisor"
        assert approval["arguments"]["amount"] == 89.9
        bad = c.post(
            f"/api/approvals/{approval['approval_id']}/approve",
            json={"arguments": {"order_id": "1234", "amount": "lots", "reason": "x"}},
        )
        assert bad.status_code == 422 and "do not fit issue_refund" in bad.json()["detail"]
        edited = {"order_id": "1234", "amount": 45.0, "reason": "partial refund"}
        r = c.post(
            f"/api/approvals/{approval['approval_id']}/approve",
            json={"arguments": edited, "comment": "half is fair"},
        )
        assert r.status_code == 200 and r.json()["status"] == "approved"
        assert r.json()["edited_arguments"] == edited
        again = c.post(f"/api/approvals/{approval['approval_id']}/deny", json={"reason": "no"})
        assert again.status_code == 409 and "already approved" in again.json()["detail"]
        run = wait_for(c, run_id, {"succeeded"})
        events = c.get(f"/api/runs/{run_id}/events").json()
    finished = [e for e in events if e["kind"] == "tool_finished" and e["tool"] == "issue_refund"]
    assert finished[0]["result"]["amount"] == 45.0 and run["output"]


def test_denied_refund_is_not_executed_and_the_agent_hears_why(server: Running):
    with server.admin() as c:
        run_id = submit(c, "support", "refund please")
        wait_for(c, run_id, {"waiting_approval"})
        [approval] = c.get("/api/approvals", params={"run_id": run_id}).json()
        r = c.post(f"/api/approvals/{approval['approval_id']}/deny", json={"reason": "fraud check"})
        assert r.json()["status"] == "denied" and "fraud check" in r.json()["comment"]
        wait_for(c, run_id, {"succeeded", "failed"})
        events = c.get(f"/api/runs/{run_id}/events").json()
        decided = c.get("/api/approvals", params={"status": "denied"}).json()
    assert not any(e["kind"] == "tool_finished" and e["tool"] == "issue_refund" for e in events)
    assert approval["approval_id"] in {a["approval_id"] for a in decided}


def test_kill_switch_halts_a_running_run_and_clearing_it_lets_new_runs_work(server: Running):
    with server.admin() as c:
        run_id = submit(c, "slow", "long job")
        wait_for(c, run_id, {"running"})
        time.sleep(0.3)
        r = c.post("/api/kill-switches", json={"scope": "agent:slow", "reason": "incident 7"})
        assert r.status_code == 201 and r.json()["set_by"].startswith("first admin")
        run = wait_for(c, run_id, {"killed"})
        assert "incident 7" in run["reason"] and run["steps"] < 100
        switches = c.get("/api/kill-switches").json()
        assert [s["scope"] for s in switches] == ["agent:slow"]
        agents = {a["name"]: a for a in c.get("/api/agents").json()}
        assert agents["slow"]["killed_by"] == "agent:slow" and agents["quick"]["killed_by"] is None
        assert c.delete("/api/kill-switches/agent:slow").json() == {
            "scope": "agent:slow", "cleared": True,
        }  # fmt: skip
        assert c.delete("/api/kill-switches/agent:slow").json()["cleared"] is False
        assert (
            c.post("/api/kill-switches", json={"scope": "moon", "reason": "x"}).status_code == 400
        )


def test_cancel_stops_a_running_run_and_reports_finished_ones(server: Running):
    with server.admin() as c:
        run_id = submit(c, "slow", "long")
        wait_for(c, run_id, {"running"})
        r = c.post(f"/api/runs/{run_id}/cancel").json()
        assert r["cancel_requested"] is True
        wait_for(c, run_id, {"cancelled"})
        again = c.post(f"/api/runs/{run_id}/cancel").json()
    assert again["cancel_requested"] is False and "already finished" in again["message"]


def test_rollback_reports_effects_without_undo(server: Running):
    with server.admin() as c:
        run_id = submit(c, "support", "refund")
        wait_for(c, run_id, {"waiting_approval"})
        [approval] = c.get("/api/approvals", params={"run_id": run_id}).json()
        c.post(f"/api/approvals/{approval['approval_id']}/approve", json={})
        wait_for(c, run_id, {"succeeded"})
        report = c.post(f"/api/runs/{run_id}/rollback", json={}).json()
    assert report["ok"] is False and any("issue_refund" in m for m in report["missing"])


def test_agents_show_autonomy_policy_and_tools(server: Running):
    with server.admin() as c:
        agents = {a["name"]: a for a in c.get("/api/agents").json()}
    support = agents["support"]
    assert support["autonomy"] == "auto"
    assert [r["name"] for r in support["policy"]["rules"]] == [
        "refunds-over-500-are-never-automatic", "refunds-over-50-need-a-supervisor",
    ]  # fmt: skip
    tools = {t["name"]: t for t in support["tools"]}
    assert tools["issue_refund"]["effect"] == "irreversible"


def test_usage_aggregates_by_agent_user_tag_and_day(server: Running):
    key = server.key("usage-co", "operator")
    with server.client(key) as c:
        for user, tag in (("ana", "a"), ("ana", "b"), ("bo", "a")):
            wait_for(c, submit(c, "quick", "x", user=user, tags={"team": tag}), {"succeeded"})
        by_agent = c.get("/api/usage", params={"group_by": "agent"}).json()
        by_user = c.get("/api/usage", params={"group_by": "user"}).json()
        by_tag = c.get("/api/usage", params={"group_by": "tag"}).json()
        by_day = c.get("/api/usage", params={"group_by": "day"}).json()
        by_tenant = c.get("/api/usage", params={"group_by": "tenant"}).json()
        empty = c.get("/api/usage", params={"until": 1000.0}).json()
    assert by_agent["total"]["runs"] == 3 and by_agent["total"]["model_calls"] == 6
    assert by_agent["total"]["input_tokens"] == 6 * 120
    assert [(g["key"], g["runs"]) for g in by_agent["groups"]] == [("quick", 3)]
    assert {g["key"]: g["runs"] for g in by_user["groups"]} == {"ana": 2, "bo": 1}
    assert {g["key"]: g["runs"] for g in by_tag["groups"]} == {"team=a": 2, "team=b": 1}
    assert len(by_day["groups"]) == 1 and by_day["groups"][0]["cost"] == by_agent["total"]["cost"]
    assert [g["key"] for g in by_tenant["groups"]] == ["usage-co"]
    assert empty["total"]["runs"] == 0


def test_keys_are_created_listed_and_revoked_and_revoked_keys_stop_working(server: Running):
    key = server.key("acme", "viewer", "temp")
    key_id = key.split("_")[1]
    with server.client(key) as c:
        assert c.get("/api/runs").status_code == 200
    with server.admin() as c:
        listed = {k["key_id"]: k for k in c.get("/api/keys", params={"tenant": "acme"}).json()}
        assert listed[key_id]["last_used_at"] is not None and "key" not in listed[key_id]
        assert c.delete(f"/api/keys/{key_id}").json() == {"key_id": key_id, "revoked": True}
        assert c.delete(f"/api/keys/{key_id}").json()["revoked"] is False
    with server.client(key) as c:
        r = c.get("/api/runs")
    assert r.status_code == 401 and "revoked" in r.json()["detail"]


def test_metrics_need_a_platform_key_and_speak_prometheus(server: Running):
    with server.admin() as c:
        r = c.get("/metrics")
    assert r.status_code == 200 and "bosun_" in r.text
    for role in ("viewer", "admin"):  # metrics span every tenant: not a tenant admin's
        with server.client(server.key("default", role)) as c:
            r = c.get("/metrics")
            assert r.status_code == 403 and "platform" in r.json()["detail"]
    with server.client() as c:
        assert c.get("/metrics").status_code == 401


def test_cli_keys_share_the_servers_database(server: Running):
    db = server.settings.db
    out = subprocess.run(
        [sys.executable, "-m", "bosun", "keys", "create", "--db", db, "--tenant", "cli-co",
         "--role", "viewer", "--name", "from-cli", "--json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    created = orjson.loads(out.stdout)
    with server.client(created["key"]) as c:
        assert c.get("/api/runs").json()["runs"] == []
    listing = subprocess.run(
        [sys.executable, "-m", "bosun", "keys", "list", "--db", db, "--tenant", "cli-co"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert created["key_id"] in listing and "from-cli" in listing and created["key"] not in listing
    subprocess.run(
        [sys.executable, "-m", "bosun", "keys", "revoke", "--db", db, created["key_id"]],
        check=True, capture_output=True,
    )  # fmt: skip
    with server.client(created["key"]) as c:
        assert c.get("/api/runs").status_code == 401

    sam = subprocess.run(
        [sys.executable, "-m", "bosun", "keys", "create", "--db", db, "--role", "approver",
         "--name", "sam", "--approves", "supervisor,finance", "--json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert orjson.loads(sam.stdout)["approves"] == ["supervisor", "finance"]
    refused = subprocess.run(
        [sys.executable, "-m", "bosun", "keys", "create", "--db", db, "--role", "viewer",
         "--name", "v", "--approves", "supervisor"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert refused.returncode != 0 and "cannot approve anything" in refused.stderr


def test_restarting_on_an_existing_database_creates_no_new_admin_key(tmp_path):
    db = str(tmp_path / "b.db")
    first, stop = start_server(db, workers=False)
    stop()
    second, stop = start_server(db, workers=False)
    try:
        assert first.admin_key and second.admin_key == ""
        with httpx.Client(base_url=second.url) as c:
            assert c.get("/readyz").json()["workers"] == "ok"
            r = c.get("/api/runs", headers={"Authorization": f"Bearer {first.admin_key}"})
            assert r.status_code == 200
    finally:
        stop()


def test_an_approval_that_names_a_role_is_decided_only_by_a_key_with_that_role(server: Running):
    plain = server.key("default", "approver", "ann")
    supervisor = server.key("default", "approver", "sam", approves=["supervisor"])
    with server.admin() as c:
        run_id = submit(c, "support", "My trail shoes fell apart", tags={"order": "7"})
        wait_for(c, run_id, {"waiting_approval"})
        [approval] = c.get("/api/approvals", params={"run_id": run_id}).json()
        keys = {k["name"]: k for k in c.get("/api/keys").json()}
    assert approval["role"] == "supervisor"
    assert (keys["ann"]["approves"], keys["sam"]["approves"]) == ([], ["supervisor"])
    decide = f"/api/approvals/{approval['approval_id']}"

    with server.client(plain) as c:
        for action, body in (("approve", {}), ("deny", {"reason": "no"})):
            r = c.post(f"{decide}/{action}", json=body)
            assert r.status_code == 403, r.text
            assert "must be decided by a supervisor" in r.json()["detail"]
            assert "--approves supervisor" in r.json()["detail"]
        [still] = c.get("/api/approvals", params={"run_id": run_id}).json()
        assert still["status"] == "pending"  # nothing was decided

    with server.client(supervisor) as c:
        r = c.post(f"{decide}/approve", json={"comment": "ok"})
        assert r.status_code == 200 and r.json()["decided_by"].startswith("sam ")
        wait_for(c, run_id, {"succeeded"})


def test_only_approver_and_admin_keys_take_approval_roles(server: Running):
    with server.admin() as c:
        bad = {"tenant": "default", "role": "viewer", "name": "v", "approves": ["supervisor"]}
        r = c.post("/api/keys", json=bad)
        assert r.status_code == 400 and "cannot approve anything" in r.json()["detail"]
        weird = {"tenant": "default", "role": "approver", "name": "w", "approves": ["a b"]}
        assert c.post("/api/keys", json=weird).status_code == 422


def test_every_run_status_is_a_filter_the_api_accepts(server: Running):
    viewer = server.key("default", "viewer", "vera")
    with server.client(viewer) as c:
        for status in sorted(RUN_STATUSES):
            r = c.get("/api/runs", params={"status": status})
            assert r.status_code == 200, (status, r.text)
        assert c.get("/api/runs", params={"status": "nonsense"}).status_code == 422


def test_a_retried_submit_with_an_idempotency_key_returns_the_same_run(server: Running):
    operator = server.key("default", "operator", "olga")
    other_tenant = server.key("acme", "operator", "otto")
    body = {"agent": "quick", "input": "hi"}
    with server.client(operator) as c:
        first = c.post("/api/runs", json=body, headers={"Idempotency-Key": "hook-1"})
        again = c.post("/api/runs", json=body, headers={"Idempotency-Key": "hook-1"})
        fresh = c.post("/api/runs", json=body)
        assert first.status_code == again.status_code == fresh.status_code == 201
        run_id = first.json()["run_id"]
        assert again.json()["run_id"] == run_id != fresh.json()["run_id"]
        run = c.get(f"/api/runs/{run_id}").json()
        assert run["parent_id"] is None and run["root_id"] == run_id
        tree = c.get("/api/runs", params={"root_id": run_id}).json()["runs"]
        assert [r["run_id"] for r in tree] == [run_id]
        assert c.get("/api/runs", params={"parent_id": run_id}).json()["runs"] == []
    with server.client(other_tenant) as c:  # keys are per tenant: no cross-tenant answer
        theirs = c.post("/api/runs", json=body, headers={"Idempotency-Key": "hook-1"})
        assert theirs.status_code == 201 and theirs.json()["run_id"] != run_id


def test_an_operator_pauses_a_run_and_continues_it(server: Running):
    operator = server.key("default", "operator", "olga")
    with server.admin() as admin, server.client(operator) as c:
        run_id = submit(c, "support", "My trail shoes fell apart", tags={"order": "8"})
        wait_for(c, run_id, {"waiting_approval"})
        r = c.post(f"/api/runs/{run_id}/pause")
        assert r.status_code == 200 and r.json()["done"] is True
        [approval] = admin.get("/api/approvals", params={"run_id": run_id}).json()
        admin.post(f"/api/approvals/{approval['approval_id']}/approve", json={})
        # The approved refund runs (it was decided before the pause), then the run pauses.
        wait_for(c, run_id, {"paused"})
        paused = c.get("/api/runs", params={"status": "paused"})
        assert paused.status_code == 200 and run_id in {r["run_id"] for r in paused.json()["runs"]}
        with server.client(follow_redirects=False) as web:  # the console's status filter too
            log_in(web, operator)
            page = web.get("/runs", params={"status": "paused"}).text
            assert '<option value="paused" selected' in page and run_id in page
        again = c.post(f"/api/runs/{run_id}/pause").json()
        assert again["done"] is False and "paused" in again["message"]
        assert c.post(f"/api/runs/{run_id}/unpause").json()["done"] is True
        wait_for(c, run_id, {"succeeded"})
        events = c.get(f"/api/runs/{run_id}/events").json()
    kinds = [e["kind"] for e in events]
    assert kinds.count("run_paused") == 1 and kinds.index("run_paused") < kinds.index(
        "run_finished"
    )
    refunds = [e for e in events if e["kind"] == "tool_started" and e["tool"] == "issue_refund"]
    assert len(refunds) == 1


@pytest.mark.parametrize("bad", ["a\\u0000b", "a\\ud800b"])
def test_nul_and_lone_surrogates_in_api_input_are_a_422_naming_the_field(server: Running, bad):
    body = '{"agent": "quick", "input": "' + bad + '", "tags": {"order": "1"}}'
    with server.admin() as c:
        before = c.get("/api/runs", params={"limit": 500}).json()["runs"]
        r = c.post("/api/runs", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 422, r.text
        assert "`input`" in r.text
        tag = '{"agent": "quick", "input": "ok", "tags": {"order": "' + bad + '"}}'
        r = c.post("/api/runs", content=tag, headers={"content-type": "application/json"})
        assert r.status_code == 422 and "`tags.order`" in r.text
        after = c.get("/api/runs", params={"limit": 500}).json()["runs"]
    assert len(after) == len(before)  # nothing was created


def test_a_nul_in_a_url_is_a_422(server: Running):
    with server.admin() as c:
        assert c.get("/api/runs/run_x%00y").status_code == 422
        assert c.get("/api/runs", params={"agent": "a\x00b"}).status_code == 422
