"""Signed webhooks against a real `bosun serve`: one run per delivery however often it
comes, 401 (audited) for a forged or stale signature, 409 for a replayed signature."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_helpers import Running, log_in, start_server

from bosun.store.sqlite import SqliteStore
from bosun.triggers.webhook import sign

HERE = Path(__file__).parent
SECRET = "whsec-test-7f3a"


@pytest.fixture(scope="module")
def hooked(tmp_path_factory) -> Iterator[Running]:
    mp = pytest.MonkeyPatch()
    mp.setenv("TEST_HOOK_SECRET", SECRET)
    folder = tmp_path_factory.mktemp("hooks")
    running, stop = start_server(str(folder / "bosun.db"), triggers=str(HERE / "hooks.yaml"))
    try:
        yield running
    finally:
        stop()
        mp.undo()


def deliver(
    running: Running,
    body: bytes,
    delivery: str,
    *,
    secret=SECRET,
    ts=None,
    sig=None,
    hook="refund-requested",
):
    stamp = str(int(time.time()) if ts is None else ts)
    headers = {
        "X-Bosun-Timestamp": stamp,
        "X-Bosun-Delivery": delivery,
        "X-Bosun-Signature": sig or sign(secret, stamp, body),
        "Content-Type": "application/json",
    }
    with running.client() as c:  # no API key: the signature is the authentication
        return c.post(f"/hooks/{hook}", content=body, headers=headers)


async def audit_entries(db: str) -> list:
    """The audit chain, read from the server's database by a store of our own."""
    store = SqliteStore(db)
    await store.open()
    try:
        return [r.entry for r in await store.audit_records()]
    finally:
        await store.close()


def counters(running: Running) -> dict[str, int]:
    with running.admin() as c:
        found = c.get("/api/triggers").json()
    return next(t for t in found if t["name"] == "refund-requested")["counters"]


def test_a_webhook_delivered_twice_starts_one_run(hooked):
    before = counters(hooked)
    body = json.dumps({"order": 1234, "amount": 80}).encode()
    first = deliver(hooked, body, "dlv-twice-1")
    assert first.status_code == 202, first.text
    again = deliver(hooked, body, "dlv-twice-1")  # the sender retried: same delivery id
    assert again.status_code == 202
    assert again.json()["run_id"] == first.json()["run_id"]
    assert (first.json()["deduplicated"], again.json()["deduplicated"]) == (False, True)
    with hooked.admin() as c:
        run = c.get(f"/api/runs/{first.json()['run_id']}").json()
        runs = c.get("/api/runs", params={"tag": "bosun.trigger=refund-requested"}).json()
    assert run["input"] == "refund order 1234 of 80"  # mapped by the declared jq
    assert [r["run_id"] for r in runs["runs"]].count(first.json()["run_id"]) == 1
    after = counters(hooked)
    assert after["started"] - before["started"] == 1
    assert after["deduplicated"] - before["deduplicated"] == 1
    assert after["received"] - before["received"] == 2


def test_a_forged_signature_is_401_and_audited(hooked):
    before = counters(hooked)
    body = json.dumps({"order": 1, "amount": 1_000_000}).encode()
    forged = deliver(hooked, body, "dlv-forged", secret="not-the-secret")
    assert forged.status_code == 401
    assert "signature" in forged.json()["detail"]
    with hooked.admin() as c:
        runs = c.get("/api/runs", params={"tag": "bosun.trigger=refund-requested"}).json()
    entries = asyncio.run(audit_entries(hooked.settings.db))
    refused = [e for e in entries if e.action == "auth_failed" and "webhook" in str(e.data)]
    assert refused, entries[-5:]
    assert refused[-1].subject == "/hooks/refund-requested"
    assert "signature" in refused[-1].data["reason"]
    assert SECRET not in repr(entries)
    assert all(r["input"] != "refund order 1 of 1000000" for r in runs["runs"])
    assert counters(hooked)["rejected"] - before["rejected"] == 1


def test_a_stale_timestamp_is_refused_even_when_correctly_signed(hooked):
    body = json.dumps({"order": 7, "amount": 5}).encode()
    stale = deliver(hooked, body, "dlv-stale", ts=int(time.time()) - 3600)
    assert stale.status_code == 401
    assert "timestamp" in stale.json()["detail"]


def test_a_captured_request_replayed_under_a_new_delivery_id_is_refused(hooked):
    body = json.dumps({"order": 99, "amount": 3}).encode()
    stamp = str(int(time.time()))
    sig = sign(SECRET, stamp, body)
    assert deliver(hooked, body, "dlv-orig", ts=stamp, sig=sig).status_code == 202
    replay = deliver(hooked, body, "dlv-attacker", ts=stamp, sig=sig)
    assert replay.status_code == 409


def test_a_body_the_expression_cannot_map_is_422_and_starts_nothing(hooked):
    body = json.dumps(["not", "an", "object"]).encode()
    r = deliver(hooked, body, "dlv-unmappable")
    assert r.status_code == 422, r.text


def test_a_paused_hook_answers_503_then_takes_the_delivery_once_resumed(hooked):
    body = json.dumps({"order": 55, "amount": 2}).encode()
    with hooked.admin() as c:
        assert c.post("/api/triggers/refund-requested/pause").json()["paused"] is True
    paused = deliver(hooked, body, "dlv-paused")
    assert paused.status_code == 503
    assert paused.headers["retry-after"]
    with hooked.admin() as c:
        c.post("/api/triggers/refund-requested/resume")
    assert deliver(hooked, body, "dlv-paused").status_code == 202


def test_unknown_hooks_are_404_and_the_triggers_api_needs_a_key(hooked):
    with hooked.client() as c:
        assert c.post("/hooks/nope", content=b"{}").status_code == 404
        assert c.get("/api/triggers").status_code == 401
    other = hooked.key("other-tenant", "admin")
    with hooked.client(other) as c:
        assert c.get("/api/triggers").json() == []
        assert c.post("/api/triggers/refund-requested/pause").status_code == 404


def test_the_refund_example_webhook_starts_the_refund_workflow(tmp_path, monkeypatch):
    """examples/workflows/triggers.yaml: a signed POST of refund.input.json to
    /hooks/refund-requested starts refund.yaml, which completes offline (a small refund)."""
    monkeypatch.setenv("REFUND_HOOK_SECRET", "refund-secret")
    examples = HERE.parents[1] / "examples" / "workflows"
    running, stop = start_server(
        str(tmp_path / "bosun.db"), triggers=str(examples / "triggers.yaml")
    )
    try:
        body = (examples / "refund.input.json").read_bytes()
        r = deliver(
            running, body, "shop-delivery-1", secret="refund-secret", hook="refund-requested"
        )
        assert r.status_code == 202, r.text
        run_id = r.json()["run_id"]
        with running.admin() as c:
            deadline = time.monotonic() + 30
            while (run := c.get(f"/api/runs/{run_id}").json())["status"] not in (
                "succeeded",
                "failed",
            ):
                assert time.monotonic() < deadline, run
                time.sleep(0.1)
            listed = c.get("/api/triggers").json()
        assert run["status"] == "succeeded", run
        assert json.loads(run["input"]) == json.loads(body)
        assert json.loads(run["output"])["path"] == "automatic"
        kinds = {t["name"]: t["kind"] for t in listed}
        assert kinds == {"refund-requested": "webhook", "refund-escalated": "event"}
    finally:
        stop()


def test_the_console_lists_triggers_with_their_counters_and_pauses_them(hooked):
    with hooked.client(follow_redirects=True) as browser:
        assert log_in(browser, hooked.admin_key).status_code == 200
        page = browser.get("/triggers")
        assert page.status_code == 200
        assert 'data-trigger="refund-requested"' in page.text
        token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        paused = browser.post("/triggers/refund-requested/pause", data={"csrf": token})
        assert "Trigger refund-requested paused" in paused.text
        assert 'class="status s-paused">paused' in paused.text
        resumed = browser.post("/triggers/refund-requested/resume", data={"csrf": token})
        assert "resumed" in resumed.text
        # Without the session's token, nothing changes.
        assert browser.post("/triggers/refund-requested/pause", data={}).status_code == 403
    with hooked.admin() as c:
        listed = c.get("/api/triggers").json()
    assert next(t for t in listed if t["name"] == "refund-requested")["paused"] is False
