"""Handoffs and reviews at the edges: the API's events of a run tree carry `handed_off`
and the review's events, and the console's run page shows the timeline's handoff and veto
and each reviewer's veto rate in the tree (a real `bosun serve` on 127.0.0.1)."""

from __future__ import annotations

import html
import os
import re
from collections.abc import Iterator

import httpx
import pytest
from server_helpers import ROOT, Running, log_in, start_server, submit, wait_for
from test_console_e2e import CHROMIUM, browser, page, refused  # noqa: F401 (fixtures)
from test_console_e2e import log_in as browser_log_in

SUPPORT_TEAM = str(ROOT / "examples" / "support-team" / "agent.yaml")


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Running]:
    folder = tmp_path_factory.mktemp("teams")
    running, stop = start_server(str(folder / "bosun.db"), agents=[SUPPORT_TEAM])
    try:
        yield running
    finally:
        stop()


def test_the_api_and_the_console_show_the_handoff_the_veto_and_the_veto_rate(server: Running):
    with server.admin() as c:
        root = submit(c, "triage", "My order 1234 arrived broken, I want a refund.")
        wait_for(c, root, {"succeeded"})
        root_events = c.get(f"/api/runs/{root}/events").json()
        children = c.get("/api/runs", params={"parent_id": root}).json()["runs"]
    [handed] = [e for e in root_events if e["kind"] == "handed_off"]
    assert handed["to_agent"] == "refunds"
    specialist = handed["run_id"]
    with server.admin() as c:
        events = c.get(f"/api/runs/{specialist}/events").json()
    [decided] = [e for e in events if e["kind"] == "review_decided"]
    assert decided["verdict"] == "veto" and decided["reviewer"] == "qa"
    assert [r["run_id"] for r in children] == [specialist]  # the receiver: a child

    with httpx.Client(base_url=server.url, timeout=20) as web:
        assert log_in(web, server.admin_key).status_code == 303
        page = web.get(f"/runs/{specialist}").text
        root_page = web.get(f"/runs/{root}").text
    text = html.unescape(page)
    assert "issue_refund VETOED by reviewer qa" in text
    row = re.search(r'<tr data-reviewer="qa">(.*?)</tr>', page, re.S)
    assert row is not None, "no reviews table on the run page"
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(1))
    assert cells == ["qa", "1", "0", "1", "0", "100%"]
    assert "HANDOFF triage -> refunds" in html.unescape(root_page)
    assert 'data-reviewer="qa"' in root_page  # the whole tree's reviews, from its root too


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"no Chromium at {CHROMIUM}")
def test_the_run_page_shows_the_veto_and_the_veto_rate_in_a_browser(page, server: Running):  # noqa: F811
    """In a real Chromium, under the console's Content-Security-Policy (the `page` fixture
    fails the test if the browser refuses anything)."""
    from playwright.sync_api import expect

    with server.admin() as c:
        root = submit(c, "triage", "My order 1234 arrived broken, I want a refund.")
        wait_for(c, root, {"succeeded"})
        [specialist] = c.get("/api/runs", params={"parent_id": root}).json()["runs"]
    browser_log_in(page, server.admin_key)
    page.goto(f"/runs/{specialist['run_id']}")
    expect(page.locator("#run-reviews tr[data-reviewer=qa] .veto-rate")).to_have_text("100%")
    expect(page.locator("body")).to_contain_text("issue_refund VETOED by reviewer qa")
    page.goto(f"/runs/{root}")
    expect(page.locator("body")).to_contain_text("HANDOFF triage -> refunds")
    expect(page.locator("#run-tree li")).to_have_count(3)
