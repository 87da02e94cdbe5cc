"""One read projection: the CLI, the API and the console show the same calls of a run
(from `bosun.journal.calls`, redacted alike), and `bosun usage` and the API's `/usage`
sum through one aggregator, so they agree, also about garbage-collected runs."""

from __future__ import annotations

import asyncio
import html
import json
import re
import time

import httpx
import pytest
from agents import quick
from server_helpers import AGENTS, TEST_AGENTS, log_in, start_server, submit, wait_for

from bosun import Agent, Runtime, tool
from bosun.cli import main

PASSWORD = "hunter2-original"
EDITED = "s3cret-edited-by-approver"
MASK = "[redacted]"


SIGN_IN = "pw-quoted-back-123"


@tool(effect="write", idempotent=True)
def sign_in(user: str, password: str) -> dict:
    """Sign in (its `password` is sensitive by default: nothing declares it)."""
    return {"user": user, "ok": True}


# Its answer quotes the password it signed in with: the run's output holds a secret.
leaky = Agent(
    name="leaky",
    model={"provider": "scripted", "turns": [
        {"tool_calls": [{"name": "sign_in", "arguments": {"user": "bo", "password": SIGN_IN}}]},
        {"content": f"Signed in as bo with {SIGN_IN}."},
    ]},
    tools=[sign_in],
)  # fmt: skip


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A real server with one `vault` run: a login approved with an edited (secret)
    password, which then fails quoting it; and one `quick` run (a call that succeeds)."""
    db = str(tmp_path_factory.mktemp("projection") / "bosun.db")
    agents = [*AGENTS, f"{TEST_AGENTS}:vault", f"{__file__}:leaky"]
    running, stop = start_server(db, agents=agents)
    try:
        with running.admin() as admin:
            vault_run = submit(admin, "vault", "log in")
            wait_for(admin, vault_run, {"waiting_approval"})
            (pending,) = admin.get("/api/approvals", params={"run_id": vault_run}).json()
            edit = {"user": "ana", "password": EDITED}
            r = admin.post(
                f"/api/approvals/{pending['approval_id']}/approve", json={"arguments": edit}
            )
            assert r.status_code == 200, r.text
            wait_for(admin, vault_run, {"succeeded", "failed"})
            quick_run = submit(admin, "quick", "count")
            wait_for(admin, quick_run, {"succeeded"})
            leaky_run = submit(admin, "leaky", "sign in")
            wait_for(admin, leaky_run, {"succeeded"})
        yield running, db, (vault_run, quick_run, leaky_run)
    finally:
        stop()


def cli_calls(capsys, db: str, run_id: str) -> list[dict]:
    assert main(["show", run_id, "--calls", "--json", "--db", db]) == 0
    return json.loads(capsys.readouterr().out)


def console_calls(running, key: str, run_id: str) -> list[tuple[str, str, str]]:
    """(call id, outcome, arguments) of each call box on the run's console page."""
    with httpx.Client(base_url=running.url, timeout=20) as browser:
        assert log_in(browser, key).status_code == 303
        page = browser.get(f"/runs/{run_id}")
    assert page.status_code == 200
    boxes = re.findall(
        r'<div class="call o-(\w+)" data-call-id="([^"]+)">.*?<span>Arguments</span><pre>(.*?)</pre>',
        page.text,
        re.S,
    )
    return [(call_id, outcome, html.unescape(args)) for outcome, call_id, args in boxes]


def test_the_cli_the_api_and_the_console_show_the_same_calls(served, capsys):
    running, db, runs = served
    viewer = running.key("default", "viewer")
    for run_id in runs:
        with running.client(viewer) as c:
            r = c.get(f"/api/runs/{run_id}/calls")
        assert r.status_code == 200, r.text
        api = r.json()
        assert api and api == cli_calls(capsys, db, run_id)
        shown = console_calls(running, viewer, run_id)
        assert [(c, o) for c, o, _ in shown] == [(a["call_id"], a["outcome"]) for a in api]
        assert [json.loads(a) for _, _, a in shown] == [json.loads(a["arguments"]) for a in api]


def test_the_calls_are_redacted_and_show_what_ran(served):
    running, _, (vault_run, quick_run, _) = served
    with running.client(running.key("default", "viewer")) as c:
        (login,) = c.get(f"/api/runs/{vault_run}/calls").json()
        (tick,) = c.get(f"/api/runs/{quick_run}/calls").json()
    text = json.dumps(login)
    assert PASSWORD not in text and EDITED not in text
    assert json.loads(login["arguments"]) == {"user": "ana", "password": MASK}  # the edit
    assert login["edited"] and login["approval"].startswith("approved by ")
    # The latest decision: the edited arguments were decided again once approved.
    assert (login["decision"], login["rule"]) == ("allow", "logins-need-approval")
    assert login["outcome"] == "failed" and login["error"].endswith(f"with password {MASK}")
    assert login["approval_id"] and login["attempts"] == 1
    assert (tick["tool"], tick["outcome"], tick["result"], tick["step"]) == ("tick", "done", 0, 1)
    with running.client(running.key("default", "viewer")) as c:
        missing = c.get("/api/runs/run_nope/calls")
    assert missing.status_code == 404


def test_the_api_and_cli_show_a_run_redacted_like_the_console_header(served, capsys):
    running, db, (_, _, leaky_run) = served
    viewer = running.key("default", "viewer")
    with running.client(viewer) as c:
        run = c.get(f"/api/runs/{leaky_run}").json()
        (call,) = c.get(f"/api/runs/{leaky_run}/calls").json()
    assert run["output"] == f"Signed in as bo with {MASK}."
    assert json.loads(call["arguments"]) == {"user": "bo", "password": MASK}
    with httpx.Client(base_url=running.url, timeout=20) as browser:
        assert log_in(browser, viewer).status_code == 303
        page = browser.get(f"/runs/{leaky_run}").text
    assert SIGN_IN not in page and html.escape(run["output"]) in page
    assert main(["show", leaky_run, "--db", db]) == 0
    story = capsys.readouterr().out
    assert SIGN_IN not in story and f"answer: {run['output']}" in story


# -- one usage aggregator --------------------------------------------------------------------


def test_bosun_usage_and_the_api_agree_about_a_garbage_collected_run(db_url, capsys):
    """A run whose journal was gc'd is one summary row: its tokens and cost count, but it
    is no model call. The API used to count it as one; `bosun usage` did not."""

    async def seed() -> float:
        t0 = time.time() - 1
        async with Runtime(db_url) as rt:
            await rt.run(quick, "one")
            await rt.store.gc(time.time() + 1)  # its journal goes; its totals stay
            await rt.run(quick, "two")
        return t0

    since = asyncio.run(seed())
    assert main(["usage", "--by", "agent", "--json", "--db", db_url, "--since", "1h"]) == 0
    cli = json.loads(capsys.readouterr().out)
    running, stop = start_server(db_url, workers=False)
    try:
        with running.client(running.key("default", "viewer")) as c:
            api = c.get("/api/usage", params={"group_by": "agent", "since": since}).json()
    finally:
        stop()
    assert [(line["agent"], line["runs"], line["model_calls"]) for line in cli] == [("quick", 2, 2)]
    (group,) = api["groups"]
    for field in ("runs", "model_calls", "input_tokens", "output_tokens", "cost"):
        assert group[field] == cli[0][field], field
        assert api["total"][field] == cli[0][field], field
    assert group["input_tokens"] == 4 * 120  # two model answers per run, gc'd or not
