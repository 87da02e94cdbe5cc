"""Who may do what: every endpoint needs a key, each role is held to its permissions, a
tenant never sees another tenant's runs, approvals, events or costs, whatever it asks, and
only a platform key manages other tenants (their keys, platform-wide kill switches).

The role matrix is checked against the OpenAPI document, so an endpoint added without an
entry here fails `test_the_matrix_covers_every_endpoint`.
"""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
from server_helpers import Running, log_in, start_server, submit, wait_for

from bosun.journal.audit import AuditEntry
from bosun.store import open_store

ROLES = ("viewer", "operator", "approver", "admin", "platform")
ALLOWED = {
    "read": {"viewer", "operator", "approver", "admin", "platform"},
    "operate": {"operator", "admin", "platform"},
    "approve": {"approver", "admin", "platform"},
    "admin": {"admin", "platform"},  # admin: its own tenant's keys only (tests below)
    "platform": {"platform"},
}
# (method, path, permission, json body): fake ids, so permitted calls change nothing.
MATRIX = [
    ("POST", "/api/runs", "operate", {"agent": "quick", "input": "matrix"}),
    ("GET", "/api/runs", "read", None),
    ("GET", "/api/runs/{run_id}", "read", None),
    ("GET", "/api/runs/{run_id}/events", "read", None),
    ("GET", "/api/runs/{run_id}/calls", "read", None),
    ("GET", "/api/runs/{run_id}/calls/{call_id}/result", "read", None),
    ("GET", "/api/runs/{run_id}/artifacts/{digest}", "read", None),
    ("GET", "/api/runs/{run_id}/stream", "read", None),
    ("POST", "/api/runs/{run_id}/cancel", "operate", None),
    ("POST", "/api/runs/{run_id}/signals/{name}", "operate", {"ok": True}),
    ("GET", "/api/runs/{run_id}/push-deliveries", "read", None),
    ("POST", "/api/runs/{run_id}/feedback", "operate", {"score": 1}),
    ("POST", "/api/runs/{run_id}/pause", "operate", None),
    ("GET", "/api/runs/{run_id}/workflow", "read", None),
    ("POST", "/api/runs/{run_id}/tasks", "approve", {"data": {}}),
    ("GET", "/api/tasks", "read", None),
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
    ("GET", "/api/tenants", "platform", None),
    ("GET", "/api/triggers", "read", None),
    ("POST", "/api/triggers/{name}/pause", "operate", None),
    ("POST", "/api/triggers/{name}/resume", "operate", None),
    ("GET", "/metrics", "platform", None),
    ("GET", "/api/sessions", "read", None),
    ("GET", "/api/sessions/{name}", "read", None),
    ("POST", "/api/sessions/{name}/fork", "operate", {"into": "matrix-fork"}),
    ("POST", "/api/sessions/{name}/clear", "operate", None),
    ("GET", "/api/memory", "read", None),
    ("GET", "/api/memory/{memory_id}", "read", None),
    ("DELETE", "/api/memory/{memory_id}", "operate", None),
]
# Webhooks authenticate by their signature (tests/triggers/test_webhooks.py).
PUBLIC = {("GET", "/healthz"), ("GET", "/readyz"), ("POST", "/hooks/{name}")}
FAKE = {
    "run_id": "run_doesnotexist",
    "approval_id": "apr_doesnotexist",
    "scope": "tenant:matrix",
    "key_id": "000000000000",
    "name": "a_signal",
    "call_id": "call_1",
    "digest": "sha256:" + "0" * 64,
    "memory_id": "mem_doesnotexist",
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
    """Tenant alpha's refund, waiting for approval, with a kill switch of its own (which
    ends that parked run within a worker poll, closing its approval as `cancelled`: the
    tests below hold only what no other tenant may change)."""
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
        for path in (
            f"/api/runs/{run_id}",
            f"/api/runs/{run_id}/events",
            f"/api/runs/{run_id}/calls",
            f"/api/runs/{run_id}/calls/call_1/result",
            f"/api/runs/{run_id}/artifacts/sha256:{'0' * 64}",
        ):
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
    with server.client(alpha_run["key"]) as c:  # untouched by beta: still waiting, or ended
        # by alpha's own kill switch (which closes its approval), never decided by beta
        run = c.get(f"/api/runs/{run_id}").json()
        [approval] = c.get("/api/approvals", params={"run_id": run_id, "status": "all"}).json()
        assert (run["status"], approval["status"]) in (
            ("waiting_approval", "pending"),
            ("killed", "cancelled"),
        )
        assert approval["decided_by"] is None
    # Each attempt to change alpha's objects is in the audit trail, under the caller's tenant.
    tried = [
        (e.data["tried"], e.subject, e.data["tenant"])
        for e in audit(server)
        if e.action == "forbidden" and e.actor.startswith("beta-admin (")
    ]
    assert tried == [
        *((action, run_id, "alpha") for action in ("cancel", "pause", "unpause", "rollback")),
        ("approve", approval_id, "alpha"),
        ("deny", approval_id, "alpha"),
    ]


def test_tenant_kill_switches_are_private_and_only_platform_keys_set_platform_wide_ones(
    server: Running, alpha_run
):
    for role in ("operator", "admin"):
        with server.client(server.key("beta", role, f"beta-{role}-switches")) as c:
            assert "tenant:alpha" not in {k["scope"] for k in c.get("/api/kill-switches").json()}
            for scope in ("tenant:alpha", "global", "agent:support", "tool:issue_refund"):
                r = c.post("/api/kill-switches", json={"scope": scope, "reason": "x"})
                assert r.status_code == 403 and "platform key" in r.json()["detail"], scope
            assert c.delete("/api/kill-switches/tenant:alpha").status_code == 403
            assert c.delete("/api/kill-switches/global").status_code == 403
            r = c.post("/api/kill-switches", json={"scope": "tenant:beta", "reason": "own"})
            assert r.status_code == 201
            assert c.delete("/api/kill-switches/tenant:beta").json()["cleared"] is True
    with server.client(alpha_run["key"]) as c:
        assert "tenant:alpha" in {k["scope"] for k in c.get("/api/kill-switches").json()}
    # A platform key sets what stops every tenant (a scope that matches no run here), and
    # sees every tenant's switch.
    with server.client(server.key("ops", "platform", "ops-switches")) as c:
        r = c.post("/api/kill-switches", json={"scope": "agent:nobody", "reason": "drill"})
        assert r.status_code == 201
        assert "tenant:alpha" in {k["scope"] for k in c.get("/api/kill-switches").json()}
        assert c.delete("/api/kill-switches/agent:nobody").json()["cleared"] is True
    refused = [
        e
        for e in audit(server)
        if e.action == "forbidden" and e.tenant == "beta" and e.data["tried"] in ("kill", "unkill")
    ]
    assert {(e.data["tried"], e.subject) for e in refused} >= {
        ("kill", "global"),
        ("kill", "tenant:alpha"),
        ("unkill", "global"),
    }
    assert {e.actor.split(" (")[0] for e in refused} == {"beta-operator-switches",
                                                          "beta-admin-switches"}  # fmt: skip


def test_a_run_kill_switch_is_the_runs_tenants_alone(server: Running, alpha_run):
    """`run:ID` stops a run's subtree: its own tenant's operators set it and see it; another
    tenant learns nothing (404, as for every run action), and its listing never shows it."""
    scope = f"run:{alpha_run['run_id']}"
    with server.client(server.key("beta", "operator", "beta-run-switch")) as c:
        r = c.post("/api/kill-switches", json={"scope": scope, "reason": "x"})
        assert r.status_code == 404
    with server.client(alpha_run["key"]) as c:
        assert c.post("/api/kill-switches", json={"scope": scope, "reason": "x"}).status_code == 201
        assert scope in {k["scope"] for k in c.get("/api/kill-switches").json()}
    with server.client(server.key("beta", "operator", "beta-run-switch-2")) as c:
        assert scope not in {k["scope"] for k in c.get("/api/kill-switches").json()}
    with server.client(alpha_run["key"]) as c:
        assert c.delete(f"/api/kill-switches/{scope}").json()["cleared"] is True


def audit(server: Running) -> list[AuditEntry]:
    """The server's audit trail, read from its database (WAL: while it serves)."""

    async def read() -> list[AuditEntry]:
        store = open_store(server.settings.db)
        await store.open()
        try:
            return [r.entry for r in await store.audit_records()]
        finally:
            await store.close()

    return asyncio.run(read())


def key_id(key: str) -> str:
    return key.split("_")[1]


def test_a_tenant_admin_manages_its_own_tenants_keys_and_no_other(server: Running):
    """The probe: an acme admin minted a key for `default`, approved `default`'s payment and
    revoked `default`'s admin key. Now each is refused, audited, and changes nothing."""
    default_admin = server.key("default", "admin", "default-admin")
    acme_admin = server.key("acme", "admin", "acme-admin")
    with server.client(acme_admin) as c:
        body = {"tenant": "default", "role": "admin", "name": "intruder"}
        r = c.post("/api/keys", json=body)
        assert r.status_code == 403 and "platform key" in r.json()["detail"]
        r = c.post("/api/keys", json={"tenant": "acme", "role": "platform", "name": "up"})
        assert r.status_code == 403 and "platform" in r.json()["detail"]
        assert c.get("/api/keys", params={"tenant": "default"}).status_code == 403
        assert {k["tenant"] for k in c.get("/api/keys").json()} == {"acme"}
        r = c.delete(f"/api/keys/{key_id(default_admin)}")
        assert r.status_code == 404  # another tenant's key is reported as not there
        assert c.delete(f"/api/keys/{key_id(server.admin_key)}").status_code == 404
        assert c.get("/api/tenants").status_code == 403
        # Its own tenant: a key without `tenant` is the caller's; it revokes its own keys.
        mine = c.post("/api/keys", json={"role": "viewer", "name": "acme-viewer"})
        assert mine.status_code == 201 and mine.json()["tenant"] == "acme"
        gone = c.delete(f"/api/keys/{mine.json()['key_id']}")
        assert gone.status_code == 200 and gone.json()["revoked"] is True
    with server.client(default_admin) as c:  # untouched, still works
        assert c.get("/api/runs").status_code == 200
        assert "intruder" not in {k["name"] for k in c.get("/api/keys").json()}
    refused = [e for e in audit(server) if e.action == "forbidden" and e.actor.startswith(
        "acme-admin (")]  # fmt: skip
    assert [(e.data["tried"], e.data.get("tenant"), e.tenant) for e in refused] == [
        ("create_key", "default", "acme"),
        ("create_key", "acme", "acme"),  # a platform key, even in its own tenant
        ("list_keys", "default", "acme"),
        ("revoke_key", "default", "acme"),
        ("revoke_key", "default", "acme"),
    ]
    assert refused[3].subject == key_id(default_admin)


def test_an_admin_cannot_revoke_its_tenants_platform_key(server: Running):
    ops_platform = server.key("ops", "platform", "ops-platform")
    with server.client(server.key("ops", "admin", "ops-admin")) as c:
        r = c.delete(f"/api/keys/{key_id(ops_platform)}")
        assert r.status_code == 403 and "platform key" in r.json()["detail"]
    with server.client(ops_platform) as c:
        assert c.get("/api/runs").status_code == 200


def test_no_key_decides_another_tenants_approval_not_even_a_platform_key(
    server: Running, alpha_run
):
    approval_id = alpha_run["approval_id"]
    deciders = {
        "gamma-admin": server.key("gamma", "admin", "gamma-admin"),
        "gamma-platform": server.key("gamma", "platform", "gamma-platform"),
        "first-platform-key": server.admin_key,  # tenant default
    }
    for who, key in deciders.items():
        with server.client(key) as c:
            assert c.post(f"/api/approvals/{approval_id}/approve", json={}).status_code == 404
            r = c.post(f"/api/approvals/{approval_id}/deny", json={"reason": "mine now"})
            assert r.status_code == 404, who
    with server.client(alpha_run["key"]) as c:  # pending, or closed by alpha's own switch
        [approval] = c.get(
            "/api/approvals", params={"run_id": alpha_run["run_id"], "status": "all"}
        ).json()
        assert approval["status"] in ("pending", "cancelled") and approval["decided_by"] is None
    refused = [
        e
        for e in audit(server)
        if e.action == "forbidden" and e.subject == approval_id and e.tenant != "beta"
    ]
    assert [(e.tenant, e.data["tried"], e.data["tenant"]) for e in refused] == [
        ("gamma", "approve", "alpha"),
        ("gamma", "deny", "alpha"),
        ("gamma", "approve", "alpha"),
        ("gamma", "deny", "alpha"),
        ("default", "approve", "alpha"),
        ("default", "deny", "alpha"),
    ]


def test_a_platform_key_manages_every_tenants_keys_but_sees_only_its_own_data(
    server: Running, alpha_run
):
    platform = server.key("ops", "platform", "ops-manager")
    with server.client(platform) as c:
        r = c.post("/api/keys", json={"tenant": "delta", "role": "admin", "name": "delta-admin"})
        assert r.status_code == 201 and r.json()["tenant"] == "delta"
        delta_admin = r.json()["key"]
        other = c.post("/api/keys", json={"tenant": "delta", "role": "platform", "name": "p2"})
        assert other.status_code == 201 and other.json()["role"] == "platform"
        listed = c.get("/api/keys", params={"tenant": "delta"}).json()
        assert {k["name"] for k in listed} == {"delta-admin", "p2"}
        assert {"alpha", "delta", "ops", "default"} <= {
            k["tenant"] for k in c.get("/api/keys").json()
        }
        assert c.delete(f"/api/keys/{other.json()['key_id']}").json()["revoked"] is True
        tenants = {t["tenant"]: t for t in c.get("/api/tenants").json()}
        assert tenants["delta"] == {"tenant": "delta", "keys": 1, "revoked_keys": 1, "runs": 0}
        assert tenants["alpha"]["runs"] == 1 and tenants["alpha"]["keys"] >= 1
        # Data stays tenant-scoped: alpha's run is not there for a platform key of ops.
        assert c.get(f"/api/runs/{alpha_run['run_id']}").status_code == 404
        assert alpha_run["run_id"] not in {r["run_id"] for r in c.get("/api/runs").json()["runs"]}
        assert c.get("/api/approvals", params={"status": "all"}).json() == []
    with server.client(delta_admin) as c:
        assert c.get("/api/keys").status_code == 200
    created = [e for e in audit(server) if e.action == "api_key_created" and e.tenant == "delta"]
    assert {e.actor.split(" (")[0] for e in created} == {"ops-manager"}


def test_the_first_key_of_a_new_database_is_a_platform_key(server: Running):
    with server.admin() as c:
        [first] = [k for k in c.get("/api/keys").json() if k["key_id"] == key_id(server.admin_key)]
    assert (first["role"], first["tenant"]) == ("platform", "default")


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
