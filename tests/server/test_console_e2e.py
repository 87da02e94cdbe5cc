"""The console in a real headless Chromium (Debian's `chromium`, driven by Playwright):
log in, watch a run appear and complete, approve a pending refund and see the run continue,
set a kill switch and see a running run halt. Screenshots of each page go to
$BOSUN_SCREENSHOTS (e.g. docs/screenshots) when set, else to a temporary folder.

Every test runs under the console's Content-Security-Policy, and fails if the browser
reports refusing anything (an inline script or style, a handler, an eval): the CSP must
never break the console.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_helpers import Running, submit, wait_for

CHROMIUM = os.environ.get("BOSUN_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM),
    reason=f"no Chromium at {CHROMIUM}: install Debian's `chromium` package "
    "(`apt-get install -y chromium`, or `make test` as root does it) to run the console tests",
)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("BOSUN_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def refused() -> list[str]:
    """What the browser reported refusing under the Content-Security-Policy."""
    return []


@pytest.fixture
def page(browser, server: Running, refused: list[str]):
    context = browser.new_context(viewport={"width": 1280, "height": 860}, base_url=server.url)
    context.on(
        "console",
        lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()
    assert refused == [], f"the console broke its Content-Security-Policy: {refused}"


def log_in(page, key: str, shots: Path | None = None) -> None:
    page.goto("/runs")
    assert "/login" in page.url  # every page but the login page needs a session
    if shots is not None:
        page.screenshot(path=str(shots / "login.png"))
    page.fill("#key", key)
    page.click("button[type=submit]")
    page.wait_for_url("**/runs")


def test_log_in_and_watch_a_run_appear_and_complete(page, server: Running, shots):
    from playwright.sync_api import expect

    page.goto("/login")
    page.fill("#key", "bosun_0123456789ab_" + "x" * 43)
    page.click("button[type=submit]")
    expect(page.locator(".flash.err")).to_contain_text("authentication failed")
    log_in(page, server.admin_key, shots)
    expect(page.locator("header .who")).to_contain_text("first admin")
    with server.admin() as c:
        run_id = submit(c, "steady", "Summarise ticket 4821", user="ana", tags={"ticket": "4821"})
    row = page.locator(f"tr[data-run='{run_id}']")
    expect(row).to_be_visible()  # appears without a reload (Server-Sent Events + htmx)
    expect(row.locator(".status")).to_have_text("succeeded", timeout=20_000)
    expect(row).to_contain_text("ticket=4821")
    page.screenshot(path=str(shots / "runs.png"), full_page=True)
    row.locator("a").first.click()
    page.wait_for_url(f"**/runs/{run_id}")
    expect(page.locator("#run-status")).to_contain_text("succeeded")
    expect(page.locator(".timeline .step")).to_have_count(5)
    expect(page.locator(".timeline")).to_contain_text("The model decided to call 1 tool")
    expect(page.locator(".objects")).to_contain_text("ticket 4821")
    page.locator(".timeline details summary").first.click()
    expect(page.locator(".timeline details[open] pre").first).to_contain_text('"kind"')
    page.screenshot(path=str(shots / "run.png"), full_page=True)


def test_approve_a_pending_refund_and_see_the_run_continue(page, server: Running, shots):
    from playwright.sync_api import expect

    log_in(page, server.admin_key)
    page.goto("/approvals")
    with server.admin() as c:
        run_id = submit(c, "support", "My trail shoes fell apart after two runs",
                        user="ana@example.com", tags={"order": "1234"})  # fmt: skip
        wait_for(c, run_id, {"waiting_approval"})
    card = page.locator(".approval").filter(has_text=run_id)
    expect(card).to_be_visible()  # the inbox updates live
    expect(card).to_contain_text("refunds-over-50-need-a-supervisor")
    expect(card).to_contain_text('"amount": 89.9')
    page.screenshot(path=str(shots / "approvals.png"), full_page=True)
    card.locator("form.approve input[name=comment]").fill("receipt checked")
    card.locator("form.approve button").click()
    expect(page.locator(".flash.ok")).to_contain_text("Approved issue_refund")
    page.goto(f"/runs/{run_id}")
    expect(page.locator("#run-status")).to_contain_text("succeeded", timeout=20_000)
    expect(page.locator(".timeline")).to_contain_text("approved by first admin")
    expect(page.locator(".timeline")).to_contain_text("rf_")


def test_set_a_kill_switch_and_see_a_running_run_halt(browser, page, server: Running, shots):
    from playwright.sync_api import expect

    log_in(page, server.admin_key)
    with server.admin() as c:
        run_id = submit(c, "slow", "Reconcile 400 invoices")
        wait_for(c, run_id, {"running"})
    page.goto(f"/runs/{run_id}")
    expect(page.locator("#run-status")).to_contain_text("running")
    controls = page.context.new_page()
    controls.goto("/controls")
    controls.select_option("select[name=scope]", "agent:slow")
    controls.fill("input[name=reason]", "incident 42: invoices double-posted")
    controls.click("form.kill button")
    expect(controls.locator(".flash.ok")).to_contain_text("Kill switch agent:slow set")
    expect(controls.locator("tr[data-scope='agent:slow']")).to_contain_text("first admin")
    controls.screenshot(path=str(shots / "controls.png"), full_page=True)
    # The run page, untouched, shows the run halting live.
    expect(page.locator("#run-status")).to_contain_text("killed", timeout=20_000)
    expect(page.locator(".io")).to_contain_text("incident 42")
    controls.locator("tr[data-scope='agent:slow'] button").click()
    expect(controls.locator(".flash.ok")).to_contain_text("cleared")


def test_costs_page_charts_spend_and_tokens(page, server: Running, shots):
    from playwright.sync_api import expect

    with server.admin() as c:
        wait_for(c, submit(c, "quick", "x", tags={"team": "billing"}), {"succeeded"})
    log_in(page, server.admin_key)
    page.goto("/costs")
    expect(page.locator(".totals")).to_contain_text("Spend")
    expect(page.locator("svg.chart").first).to_be_visible()
    assert page.locator("svg.chart rect").count() > 3
    expect(page.locator("body")).to_contain_text("team=billing")
    page.screenshot(path=str(shots / "costs.png"), full_page=True)


def test_the_console_works_under_its_content_security_policy(page, server: Running, refused):
    from playwright.sync_api import expect

    response = page.goto("/login")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    log_in(page, server.admin_key)
    with server.admin() as c:
        run_id = submit(c, "steady", "Summarise ticket 77")
        wait_for(c, run_id, {"succeeded"})
    page.goto(f"/runs/{run_id}")
    expect(page.locator("#run-status")).to_contain_text("succeeded")
    # The confirmation before a rollback (a script handler, not an inline one): declined,
    # nothing happens; accepted, the rollback runs.
    with page.expect_event("dialog") as asked:
        page.once("dialog", lambda d: d.dismiss())
        page.click("text=Roll back effects")
    assert "undo of every effect" in asked.value.message
    expect(page.locator(".flash")).to_have_count(0)
    with page.expect_event("dialog"):
        page.once("dialog", lambda d: d.accept())
        page.click("text=Roll back effects")
    expect(page.locator(".flash.ok")).to_contain_text("Rollback:")
    # The costs period submits itself when changed.
    page.goto("/costs")
    page.select_option("select[name=days]", "7")
    page.wait_for_url("**/costs?days=7")
    for path in ("/runs", "/approvals", "/controls"):
        page.goto(path)
        expect(page.locator("header .who")).to_contain_text("first admin")
    assert refused == []


def test_the_run_page_shows_the_prompt_and_decides_approvals_and_pauses(
    page, server: Running, shots
):
    from playwright.sync_api import expect

    log_in(page, server.admin_key)
    with server.admin() as c:
        run_id = submit(c, "support", "Refund my order 1234, the shoes fell apart",
                        user="ana@example.com", tags={"order": "1234"})  # fmt: skip
        wait_for(c, run_id, {"waiting_approval"})
    page.goto(f"/runs/{run_id}")
    # What each model call was sent: the instructions, the request, then tool results.
    first = page.locator(".timeline details.prompt").first
    first.locator("summary").click()
    expect(first).to_contain_text("system")
    expect(first).to_contain_text("Refund my order 1234")
    later = page.locator(".timeline details.prompt").nth(1)
    later.locator("summary").click()
    expect(later).to_contain_text("lookup_order")
    later.screenshot(path=str(shots / "run_prompt.png"))
    # Decide the approval right on the run page.
    card = page.locator(".attention .approval")
    expect(card).to_contain_text("refunds-over-50-need-a-supervisor")
    card.locator("form.approve button").click()
    page.wait_for_url(f"**/runs/{run_id}*")
    expect(page.locator(".flash.ok")).to_contain_text("Approved issue_refund")
    expect(page.locator("#run-status")).to_contain_text("succeeded", timeout=20_000)

    with server.admin() as c:
        slow = submit(c, "slow", "long work")
        wait_for(c, slow, {"running"})
    page.goto(f"/runs/{slow}")
    page.locator("form[action$='/pause'] button").click()
    expect(page.locator("#run-status")).to_contain_text("paused", timeout=20_000)
    page.reload()
    page.locator("form[action$='/unpause'] button").click()
    expect(page.locator("#run-status")).not_to_contain_text("paused", timeout=20_000)
    with server.admin() as c:
        c.post(f"/api/runs/{slow}/cancel")


def test_the_run_page_draws_the_runs_tree_and_links_each_run(page, server: Running, shots):
    """A parent with two children and a grandchild: every run's page shows the same tree,
    parents above children, the run shown in bold and the others linked, each with what
    it spent, and the tree's total."""
    import asyncio
    import concurrent.futures
    import time

    from playwright.sync_api import expect

    from bosun.journal.events import RunStarted
    from bosun.store import RunRecord, open_store

    with server.admin() as c:
        root = submit(c, "steady", "Plan the migration")
        wait_for(c, root, {"succeeded"})

    async def children() -> None:
        store = open_store(server.settings.db)
        await store.open()
        parent = await store.get_run(root)
        assert parent is not None
        for run_id, parent_id in (("kid-a", root), ("kid-b", root), ("grandkid", "kid-a")):
            child = RunRecord(
                id=run_id, agent="researcher", agent_version=parent.agent_version, input="x",
                spec=parent.spec, tenant=parent.tenant, parent_id=parent_id, root_id=root,
                created_at=time.time(),
            )  # fmt: skip
            started = RunStarted(ts=time.time(), agent="researcher", agent_version="v", input="x")
            await store.create_run(child, [started])
        await store.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # Playwright's loop runs here
        pool.submit(asyncio.run, children()).result()
    with server.admin() as c:  # the server's workers run the children too: let them finish
        spent = [wait_for(c, r, {"succeeded"}) for r in (root, "kid-a", "kid-b", "grandkid")]
    log_in(page, server.admin_key)
    page.goto("/runs/grandkid")
    items = page.locator("#run-tree li")
    expect(items).to_have_count(4)
    assert [t.split()[1] for t in items.all_inner_texts()] == [root, "kid-a", "grandkid", "kid-b"]
    expect(page.locator("#run-tree li.this-run")).to_contain_text("grandkid")
    steps = sum(r["steps"] for r in spent)
    tokens = sum(r["input_tokens"] + r["output_tokens"] for r in spent)
    expect(page.locator("#tree-total")).to_contain_text(
        f"Tree total: {steps} steps, {tokens} tokens"
    )
    page.screenshot(path=str(shots / "run-tree.png"), full_page=True)
    page.locator("#run-tree a", has_text="steady").click()
    page.wait_for_url(f"**/runs/{root}")
    expect(page.locator("#run-tree li.this-run")).to_contain_text(root)
