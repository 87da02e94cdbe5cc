"""Media by reference at the edges: the API serves a run's artifacts and a call's whole
result only to its tenant, and the console's run page shows an attached image (a real
headless Chromium under the console's Content-Security-Policy)."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from server_helpers import Running, start_server

from bosun import Agent, Media, Runtime, tool

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "artifacts"))
from pngs import png

FRAME = png(8, 8, (220, 30, 30))
CHART = png(4, 2, (10, 10, 200))
CHROMIUM = os.environ.get("BOSUN_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


@tool(effect="read")
def chart() -> Media:
    """Draw the chart."""
    return Media(CHART, "image/png", "chart.png")


AGENT = Agent(
    name="looker",
    model={
        "provider": "scripted",
        "turns": [
            {"tool_calls": [{"id": "c1", "name": "chart", "arguments": {}}]},
            {"content": "a red frame"},
        ],
    },
    tools=[chart],
)


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[Running, str]]:
    db = str(tmp_path_factory.mktemp("artifacts") / "bosun.db")
    running, stop = start_server(db)

    async def one_run() -> str:
        async with Runtime(db) as rt:
            result = await rt.run(
                AGENT, "look", attachments=[Media(FRAME, "image/png", "cam1.png")]
            )
            assert result.status == "succeeded", result.reason
            return result.run_id

    # Playwright's sync API may own this thread's loop: run ours in a thread of its own.
    run_id = ThreadPoolExecutor(1).submit(asyncio.run, one_run()).result()
    try:
        yield running, run_id
    finally:
        stop()


def _refs(c, run_id: str) -> list[dict]:
    events = c.get(f"/api/runs/{run_id}/events").json()
    [started] = [e for e in events if e["kind"] == "run_started"]
    [finished] = [e for e in events if e["kind"] == "tool_finished"]
    return [*started["attachments"], finished["result"]]


def test_artifacts_are_served_to_the_runs_tenant_only(served):
    server, run_id = served
    with server.admin() as c:
        frame, picture = _refs(c, run_id)
        r = c.get(f"/api/runs/{run_id}/artifacts/{frame['artifact']}")
        assert r.status_code == 200 and r.content == FRAME
        assert r.headers["content-type"] == "image/png"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert c.get(f"/api/runs/{run_id}/artifacts/{picture['artifact']}").content == CHART
        # A digest the run does not reference is not served through it.
        other = "sha256:" + "0" * 64
        assert c.get(f"/api/runs/{run_id}/artifacts/{other}").status_code == 404
        whole = c.get(f"/api/runs/{run_id}/calls/c1/result")
        assert whole.status_code == 200 and picture["artifact"] in whole.text
        assert c.get(f"/api/runs/{run_id}/calls/nope/result").status_code == 404
    with server.client() as anonymous:
        assert anonymous.get(f"/api/runs/{run_id}/artifacts/{frame['artifact']}").status_code == 401
    with server.client(server.key("globex", "viewer")) as stranger:
        assert stranger.get(f"/api/runs/{run_id}/artifacts/{frame['artifact']}").status_code == 404
        assert stranger.get(f"/api/runs/{run_id}/calls/c1/result").status_code == 404


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"no Chromium at {CHROMIUM}")
def test_the_run_page_shows_the_attached_image(served):
    from playwright.sync_api import expect, sync_playwright

    server, run_id = served
    refused: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        context = browser.new_context(base_url=server.url)
        context.on(
            "console",
            lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None,
        )
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.goto("/runs")
        page.fill("#key", server.admin_key)
        page.click("button[type=submit]")
        page.wait_for_url("**/runs")
        page.goto(f"/runs/{run_id}")
        figures = page.locator(".media figure.artifact img")
        expect(figures).to_have_count(2)
        expect(page.locator(".media")).to_contain_text("cam1.png")
        expect(page.locator(".media")).to_contain_text("chart (c1)")
        loaded = page.wait_for_function(
            "() => [...document.querySelectorAll('.media img')]"
            ".every(i => i.complete && i.naturalWidth > 0)"
        )
        assert loaded
        widths = page.eval_on_selector_all(".media img", "els => els.map(e => e.naturalWidth)")
        assert widths == [8, 4]
        browser.close()
    assert refused == []


def test_a_run_submitted_with_an_attachment_over_the_api_keeps_it_by_reference(served):
    server, _ = served
    body = {
        "agent": "quick",
        "input": "what is this?",
        "attachments": [{"mime": "image/png", "data": base64.b64encode(FRAME).decode()}],
    }
    with server.admin() as c:
        r = c.post("/api/runs", json=body)
        assert r.status_code == 201, r.text
        run_id = r.json()["run_id"]
        events = c.get(f"/api/runs/{run_id}/events").json()
        [started] = [e for e in events if e["kind"] == "run_started"]
        [ref] = started["attachments"]
        assert ref["bytes"] == len(FRAME) and "data" not in ref
        assert c.get(f"/api/runs/{run_id}/artifacts/{ref['artifact']}").content == FRAME
        bad = {**body, "attachments": [{"mime": "image/png", "data": "not base64!"}]}
        assert c.post("/api/runs", json=bad).status_code == 422
