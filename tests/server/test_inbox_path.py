"""Issue 13, approvals over the tree, in a real Chromium under the console's CSP: an
approval asked three levels deep (lead > billing > biller) appears in the inbox with its
path in the tree, and approving it from the console resumes exactly that child, then its
ancestors (a real `bosun serve` on 127.0.0.1)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
from server_helpers import TEST_AGENTS, Running, start_server, submit, wait_for
from test_console_e2e import CHROMIUM, browser, page, refused  # noqa: F401 (fixtures)
from test_console_e2e import log_in as browser_log_in


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Running]:
    folder = tmp_path_factory.mktemp("inbox-path")
    running, stop = start_server(str(folder / "bosun.db"), agents=[f"{TEST_AGENTS}:lead"])
    try:
        yield running
    finally:
        stop()


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"no Chromium at {CHROMIUM}")
def test_an_approval_three_levels_deep_shows_its_path_and_approving_resumes_that_child(
    page,  # noqa: F811
    server: Running,
):
    from playwright.sync_api import expect

    with server.admin() as c:
        root = submit(c, "lead", "settle ACME's invoice")

        def deepest() -> tuple[dict, dict] | None:
            children = c.get("/api/runs", params={"parent_id": root}).json()["runs"]
            if not children:
                return None
            [billing] = children
            found = c.get("/api/runs", params={"parent_id": billing["run_id"]}).json()["runs"]
            return (billing, found[0]) if found else None

        deadline = time.monotonic() + 30
        while (pair := deepest()) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pair is not None, "the grandchild never started"
        billing, biller = pair
        wait_for(c, biller["run_id"], {"waiting_approval"})
        assert c.get(f"/api/runs/{root}").json()["status"] == "waiting"

    browser_log_in(page, server.admin_key)
    page.goto("/approvals")
    card = page.locator(".approval").filter(has_text=biller["run_id"])
    expect(card).to_be_visible()
    path = card.locator(".tree-path")
    expect(path).to_contain_text("lead")
    expect(path).to_contain_text("billing")
    expect(path).to_contain_text("biller")
    expect(path.locator("a")).to_have_count(3)  # root > child > grandchild, each linked
    links = [path.locator("a").nth(i).get_attribute("href") for i in range(3)]
    assert links == [f"/runs/{root}", f"/runs/{billing['run_id']}", f"/runs/{biller['run_id']}"]
    card.locator("form.approve input[name=comment]").fill("invoice checked")
    card.locator("form.approve button").click()
    expect(page.locator(".flash.ok")).to_contain_text("Approved wire")

    with server.admin() as c:
        assert wait_for(c, biller["run_id"], {"succeeded"})["output"] == "wired 1200"
        assert wait_for(c, root, {"succeeded"})["output"] == "all settled"
        events = c.get(f"/api/runs/{biller['run_id']}/events").json()
    [finished] = [e for e in events if e["kind"] == "tool_finished"]
    assert finished["result"] == {"wired": 1200.0, "account": "ACME-7"}  # that child resumed
    page.goto(f"/runs/{root}")
    expect(page.locator("#run-status")).to_contain_text("succeeded")
