"""Issue 14: an approval held by default policy v2 carries its suspect arguments as data,
the same on every edge: `GET /api/approvals`, `bosun approvals --json`, and the console's
inbox (a real `bosun serve` on 127.0.0.1, a real Chromium). A sensitive argument's value
is redacted there like everywhere else."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_helpers import Running, start_server, submit, wait_for
from test_console_e2e import CHROMIUM, browser, page, refused  # noqa: F401 (fixtures)
from test_console_e2e import log_in as browser_log_in

AGENTS = str(Path(__file__).with_name("inject_agents.py"))


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Running]:
    folder = tmp_path_factory.mktemp("approval-provenance")
    running, stop = start_server(
        str(folder / "bosun.db"), agents=[f"{AGENTS}:mailbot", f"{AGENTS}:payer"]
    )
    try:
        yield running
    finally:
        stop()


def held(server: Running, agent: str, text: str) -> tuple[str, dict]:
    with server.admin() as c:
        run_id = submit(c, agent, text)
        wait_for(c, run_id, {"waiting_approval"})
        [approval] = c.get("/api/approvals", params={"run_id": run_id}).json()
    return run_id, approval


def test_the_api_gives_the_suspect_argument_its_value_origin_tool_and_call(server):
    run_id, approval = held(server, "mailbot", "Summarise my latest email")
    with server.admin() as c:
        events = c.get(f"/api/runs/{run_id}/events").json()
    [read] = [e for e in events if e["kind"] == "tool_finished"]
    assert approval["rule"] == "default:sink-not-from-user"
    assert approval["provenance"] == [
        {
            "argument": "to",
            "value": "mark@evil.example",
            "origin": "untrusted",
            "sink": "egress",
            "tool": "read_email",
            "call_id": read["call_id"],
            "call_number": 1,
        }
    ]


def test_a_sensitive_suspect_value_is_redacted_but_its_origin_is_shown(server):
    _, approval = held(server, "payer", "What does my latest email say?")
    by_arg = {p["argument"]: p for p in approval["provenance"]}
    assert set(by_arg) == {"iban", "amount"}
    assert by_arg["iban"]["value"] == "[redacted]"
    assert "DE89370400440532013000" not in json.dumps(approval)
    assert by_arg["iban"]["origin"] == "untrusted" and by_arg["iban"]["tool"] == "read_email"
    assert by_arg["amount"] == {**by_arg["amount"], "value": 84.2, "sink": "amount"}


@pytest.mark.slow
def test_bosun_approvals_json_shows_the_same_provenance_as_the_api(server):
    run_id, approval = held(server, "mailbot", "Summarise my latest email, please")
    out = subprocess.run(
        [sys.executable, "-m", "bosun", "approvals", "--json", "--db", server.settings.db],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")},
    ).stdout
    [shown] = [a for a in json.loads(out) if a["run_id"] == run_id]
    assert shown["provenance"] == approval["provenance"]
    assert shown["provenance"][0]["value"] == "mark@evil.example"


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"no Chromium at {CHROMIUM}")
def test_the_console_inbox_shows_the_suspect_argument_and_where_it_came_from(
    page,  # noqa: F811
    server: Running,
):
    from playwright.sync_api import expect

    run_id, approval = held(server, "mailbot", "Summarise my latest email for me")
    browser_log_in(page, server.admin_key)
    page.goto("/approvals")
    card = page.locator(".approval").filter(has_text=run_id)
    row = card.locator("table.provenance tr[data-argument=to]")
    expect(row).to_contain_text("mark@evil.example")
    expect(row).to_contain_text("untrusted")
    expect(row).to_contain_text("read_email")
    expect(row).to_contain_text(approval["provenance"][0]["call_id"])
    expect(row).to_contain_text("egress")
