"""Who may do what: every endpoint needs a key, each role is held to its permissions, and a
tenant never sees another tenant's runs, approvals, events or costs, whatever it asks.

The role matrix is checked against the OpenAPI document, so an endpoint added without an
entry here fails `test_the_matrix_covers_every_endpoint`.
"""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
from server_helpers import Running, log_in, start_server, submit, wait_for

from bosun.store import open_store

ROLES = ("viewer", "operator", "approver", "admin")
ALLOWED = {
    "read": {"viewer", "operator", "approver", "admin"},
    "operate": {"operator", "admin"},
    "approve": {"approver", "admin"},
    "admin": {"admin"},
}
# (method, path, permission, json body): fake ids, so permitted calls change nothing.
MATRIX = [
    ("POST", "/api/runs", "operate", {"agent": "quick", "input": "matrix"}),
    ("GET", "/api/runs", "read", None),
    ("GET", "/api/runs/{run_id}", "read", None),
    ("GET", "/api/runs/{run_id}/events", "read", None),
    ("GET", "/api/runs/{run_id}/stream", "read", None),
    ("POST", "/api/runs/{run_id}/cancel", "operate", None),
    ("POST", "/api/runs/{run_id}/pause", "operate", None),
    ("POST", "/api/runs/{run_id}/unpause", "operate", None),
    ("POST", "/api/runs/{run_id}/rollback", "operate", {}),
    ("GET", "/api/stream", "read", None),
    ("GET", "/api/agents", "read", None),
    ("GET", "/api/approvals", "read", None),
    ("POST", "/api/approvals/{approval_id}/approve", "approve", {}),
    ("POST", "/api/approvals/{approval_id}/deny", "approve", {"reason": "no"}),
    ("GET", "/api/kill-switches", "read", None),
    ("POST", "/api/kill-switches", "operate", {"scope": "tenant:matrix", "reason": "test"}),
    ("DELETE", "/api/kill-switches/{scope}", "operate", None),
    ("GET", "/api/usage", "read", None),
    ("GET", "/api/keys", "admin", None),
    ("POST", "/api/keys", "admin", {"tenant": "matrix", "role": "viewer", "name": "m"}),
    ("DELETE", "/api/keys/{key_id}", "admin", None),
    ("GET", "/metrics", "admin", None),
]
PUBLIC = {("GET", "/healthz"), ("GET", "/readyz")}
FAKE = {
    "run_id": "run_doesnotexist",
    "approval_id": "apr_doesnotexist",
    "scope": "tenant:matrix",
    "key_id": "000000000000",
}


def call(client: httpx.Client, method: str, path: str, body: object) -> int:
    url = re.sub(r"\{(\w+)\}", lambda m: FAKE[m.group(1)], path)
    if path.endswith("/stream"):  # read the status, not the (endless) stream
        with client.stream(method, url) as response:
            return response.status_code
    return client.request(method, url, json=body).status_code


def test_the_matrix_covers_every_endpoint(server: Running):
    with server.client() as c:
        schema = c.get("/openapi.json").json()
    documented = {(m.upper(), p) for p, ops in schema["paths"].items() for m in ops}
    assert documented == {(m, p) for m, p, _, _ in MATRIX} | PUBLIC


@pytest.mark.parametrize(("method", "path", "permission", "body"), MATRIX)
def test_every_endpoint_refuses_requests_without_a_valid_key(
    server: Running, method, path, permission, body
):
    with server.client() as c:
        assert call(c, method, path, body) == 401
    with server.client("bosun_0123456789ab_" + "x" * 43) as c:
        assert call(c, method, path, body) == 401
    with server.client("not-a-key") as c:
        assert call(c, method, path, body) == 401
    with httpx.Client(base_url=server.url, headers={"Authorization": "Basic abc"}) as c:
        assert call(c, method, path, body) == 401


@pytest.fixture(scope="module")
def role_keys(server: Running) -> dict[str, str]:
    return {role: server.key("matrix", role, f"matrix-{role}") for role in ROLES}


@pytest.mark.parametrize(("method", "path", "permission", "body"), MATRIX)
def test_each_role_can_do_exactly_what_it_is_allowed(
    server: Running, role_keys, method, path, permission, body
):
    for role, key in role_keys.items():
        with server.client(key) as c:
            status = call(c, method, path, body)
        if role in ALLOWED[permission]:
            assert status not in (401, 403), f"{role} refused {method} {path}: {status}"
        else:
            assert status == 403, f"{role} allowed {method} {path}: {status}"


@pytest.fixture(scope="module")
def alpha_run(server: Running) -> dict:
    """Tenant alpha's refund, waiting for approval, with a kill switch of its own."""
    key = server.key("alpha", "admin", "alpha-admin")
    with server.client(key) as c:
        run_id = submit(c, "support", "alpha secret request", user="alice", tags={"order": "A1"})
        wait_for(c, run_id, {"waiting_approval"})
        [approval] = c.get("/api/approvals", params={"run_id": run_id}).json()
        c.post("/api/kill-switches", json={"scope": "tenant:alpha", "reason": "alpha only"})
    return {"run_id": run_id, "approval_id": approval["approval_id"], "key": key}


def test_another_tenant_never_sees_or_touches_a_tenants_runs(server: Running, alpha_run):
    beta = server.key("beta", "admin", "beta-admin")  # the strongest role of another tenant
    run_id, approval_id = alpha_run["run_id"], alpha_run["approval_id"]
    with server.client(beta) as c:
        for path in (f"/api/runs/{run_id}", f"/api/runs/{run_id}/events"):
            assert c.get(path).status_code == 404
        with c.stream("GET", f"/api/runs/{run_id}/stream") as response:
            assert response.status_code == 404
        for action in ("cancel", "pause", "unpause"):
            assert c.post(f"/api/runs/{run_id}/{action}").status_code == 404
        assert c.post(f"/api/runs/{run_id}/rollback", json={}).status_code == 404
        for query in ({}, {"user": "alice"}, {"tag": "order=A1"}, {"agent": "support"},
                      {"status": "waiting_approval"}, {"limit": 500}):  # fmt: skip
            assert c.get("/api/runs", params=query).json()["runs"] == []
        for status in ("pending", "all"):
            assert c.get("/api/approvals", params={"status": status}).json() == []
        assert c.get("/api/approvals", params={"run_id": run_id}).json() == []
        assert c.post(f"/api/approvals/{approval_id}/approve", json={}).status_code == 404
        deny = c.post(f"/api/approvals/{approval_id}/deny", json={"reason": "x"})
        assert deny.status_code == 404
        for group in ("agent", "user", "tenant", "tag", "day"):
            usage = c.get("/api/usage", params={"group_by": group}).json()
            assert usage["total"]["runs"] == 0 and usage["groups"] == []
    with server.client(alpha_run["key"]) as c:  # still untouched
        assert c.get(f"/api/runs/{run_id}").json()["status"] == "waiting_approval"
        assert c.get("/api/approvals", params={"run_id": run_id}).json()[0]["status"] == "pending"


def test_tenant_kill_switches_are_private_and_only_admins_set_platform_wide_ones(
    server: Running, alpha_run
):
    beta_operator = server.key("beta", "operator", "beta-op")
    with server.client(beta_operator) as c:
        assert "tenant:alpha" not in {k["scope"] for k in c.get("/api/kill-switches").json()}
        for scope in ("tenant:alpha", "global", "agent:support", "tool:issue_refund"):
            r = c.post("/api/kill-switches", json={"scope": scope, "reason": "x"})
            assert r.status_code == 403, scope
        assert c.delete("/api/kill-switches/tenant:alpha").status_code == 403
        r = c.post("/api/kill-switches", json={"scope": "tenant:beta", "reason": "own"})
        assert r.status_code == 201
        assert c.delete("/api/kill-switches/tenant:beta").json()["cleared"] is True
    with server.client(alpha_run["key"]) as c:
        assert "tenant:alpha" in {k["scope"] for k in c.get("/api/kill-switches").json()}


def test_console_pages_need_a_session_and_forms_need_the_csrf_token(server: Running, alpha_run):
    with server.client(follow_redirects=False) as c:
        for path in ("/runs", "/runs/table", f"/runs/{alpha_run['run_id']}", "/approvals",
                     "/approvals/list", "/controls", "/costs"):  # fmt: skip
            r = c.get(path)
            assert r.status_code == 303 and r.headers["location"].startswith("/login"), path
        assert c.get("/login").status_code == 200
        assert c.post("/controls/kill", data={"scope": "global", "reason": "x"}).status_code == 303
        # A bearer key is for the API; the console wants its own session.
        r = c.get("/runs", headers={"Authorization": f"Bearer {server.admin_key}"})
        assert r.status_code == 303
    with server.client(follow_redirects=False) as c:
        login = log_in(c, alpha_run["key"], next="/approvals")
        assert login.status_code == 303 and login.headers["location"] == "/approvals"
        cookie = login.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        page = c.get("/approvals").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        forged = c.post(f"/approvals/{alpha_run['approval_id']}/deny", data={"reason": "x"})
        assert forged.status_code == 403
        r = c.post("/api/kill-switches", json={"scope": "tenant:alpha", "reason": "x"})
        assert r.status_code == 403  # the API with the cookie needs the token too
        r = c.post(
            "/api/kill-switches",
            json={"scope": "tenant:alpha", "reason": "still alpha"},
            headers={"X-CSRF-Token": csrf},
        )
        assert r.status_code == 201
        assert c.get(f"/runs/{alpha_run['run_id']}").status_code == 200
        # The session only ever sees its own tenant, like the key.
        beta = server.key("beta", "admin", "beta-admin-2")
    with server.client(follow_redirects=False) as c:
        log_in(c, beta)
        assert c.get(f"/runs/{alpha_run['run_id']}").status_code == 404
        assert alpha_run["run_id"] not in c.get("/runs").text
        assert alpha_run["approval_id"] not in c.get("/approvals").text


def test_logout_and_revocation_end_console_sessions(server: Running):
    key = server.key("gamma", "viewer", "short-lived")
    with server.client(follow_redirects=False) as c:
        log_in(c, key)
        assert c.get("/runs").status_code == 200
        with server.admin() as admin:
            admin.delete(f"/api/keys/{key.split('_')[1]}")
        assert c.get("/runs").status_code == 303
    key = server.key("gamma", "viewer", "logs-out")
    with server.client(follow_redirects=False) as c:
        log_in(c, key)
        csrf = re.search(r'name="csrf" value="([^"]+)"', c.get("/runs").text).group(1)
        token = c.cookies["bosun_session"]
        assert c.post("/logout", data={"csrf": csrf}).status_code == 303
        c.cookies.set("bosun_session", token)
        assert c.get("/runs").status_code == 303


def test_failed_authentication_is_audited_and_rate_limited_per_address(tmp_path):
    db = str(tmp_path / "b.db")
    running, stop = start_server(db, workers=False, auth_failures_per_minute=3)
    try:
        with running.client("bosun_0123456789ab_" + "y" * 43) as c:
            statuses = [c.get("/api/runs").status_code for _ in range(5)]
        with running.client(follow_redirects=False) as c:
            login = log_in(c, "bosun_0123456789ab_" + "z" * 43)
        with running.admin() as c:  # even a good key waits while the address is blocked
            blocked = c.get("/api/runs").status_code
    finally:
        stop()
    assert statuses == [401, 401, 401, 429, 429] and login.status_code == 429 and blocked == 429

    async def audit() -> list:
        store = open_store(db)
        await store.open()
        try:
            return [r.entry for r in await store.audit_records()]
        finally:
            await store.close()

    entries = [e for e in asyncio.run(audit()) if e.action.startswith("auth_")]
    assert [e.action for e in entries] == ["auth_failed"] * 3 + ["auth_rate_limited"]
    assert entries[0].actor == "ip:127.0.0.1" and "unknown key" in entries[0].data["reason"]
