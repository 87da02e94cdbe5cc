"""Workflows on a real `bosun serve`: the refund example submitted by the API, its
supervisor's task in the console's Tasks page (a form from its JSON schema), answered
through the API (a bad answer is a 422 and nothing is delivered) or the console's form,
and the run's graph (SVG under the page's CSP) showing the path taken and the wait."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "server"))
from server_helpers import Running, log_in, start_server, submit, wait_for

ROOT = Path(__file__).resolve().parents[2]
REFUND = str(ROOT / "examples" / "workflows" / "refund.yaml")
LARGE = (ROOT / "examples" / "workflows" / "refund.large.input.json").read_text()


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Running]:
    folder = tmp_path_factory.mktemp("workflows")
    running, stop = start_server(str(folder / "bosun.db"), agents=[REFUND])
    try:
        yield running
    finally:
        stop()


def test_answer_through_the_api_checked_against_the_form(server: Running):
    with server.admin() as c:
        run_id = submit(c, "refund", LARGE)
        wait_for(c, run_id, {"waiting"})
        [task] = [t for t in c.get("/api/tasks").json() if t["run_id"] == run_id]
        assert task["task"] == "supervisor" and task["form"]["required"] == ["approved"]
        bad = c.post(f"/api/runs/{run_id}/tasks", json={"data": {"approved": "yes"}})
        assert bad.status_code == 422 and "approved" in bad.json()["detail"]
        assert c.get(f"/api/runs/{run_id}").json()["status"] == "waiting"
        ok = c.post(
            f"/api/runs/{run_id}/tasks",
            json={"task": "supervisor", "data": {"approved": True, "amount": 400}},
        )
        assert ok.status_code == 200, ok.text
        run = wait_for(c, run_id, {"succeeded"})
        workflow = c.get(f"/api/runs/{run_id}/workflow").json()
    assert '"path":"approved"' in run["output"] and '"amount":400' in run["output"]
    assert workflow["path"][-1] == "/do/4/notify" and workflow["waiting"] == []


def test_viewers_cannot_answer_and_other_tenants_see_nothing(server: Running):
    with server.admin() as c:
        run_id = submit(c, "refund", LARGE)
        wait_for(c, run_id, {"waiting"})
    with server.client(server.key("default", "viewer")) as viewer:
        r = viewer.post(f"/api/runs/{run_id}/tasks", json={"data": {"approved": True}})
        assert r.status_code == 403
    with server.client(server.key("other", "admin", "other-admin")) as other:
        assert all(t["run_id"] != run_id for t in other.get("/api/tasks").json())
        r = other.post(f"/api/runs/{run_id}/tasks", json={"data": {"approved": True}})
        assert r.status_code == 404


def test_console_tasks_page_form_and_graph(server: Running):
    with server.admin() as c:
        run_id = submit(c, "refund", LARGE)
        wait_for(c, run_id, {"waiting"})
    with server.client(follow_redirects=True) as browser:
        assert log_in(browser, server.admin_key).status_code == 200
        tasks = browser.get("/tasks")
        assert tasks.status_code == 200 and "Approve a large refund" in tasks.text
        assert 'type="checkbox" name="approved"' in tasks.text
        inbox = browser.get("/approvals")  # the one inbox shows the task too, with a link
        assert inbox.status_code == 200 and "Approve a large refund" in inbox.text
        assert f'href="/runs/{run_id}/graph"' in inbox.text and 'href="/tasks#' in inbox.text
        run_page = browser.get(f"/runs/{run_id}")
        assert run_page.status_code == 200 and f'href="/runs/{run_id}/graph"' in run_page.text
        graph = browser.get(f"/runs/{run_id}/graph")
        assert graph.status_code == 200 and "<svg" in graph.text
        assert "style=" not in graph.text.split("<svg", 1)[1].split("</svg>")[0]  # CSP-safe
        assert "default-src 'none'" in graph.headers["content-security-policy"]
        waiting = re.findall(r'data-pointer="([^"]+)" data-state="waiting"', graph.text)
        assert waiting == ["/do/3/review/do/1/approval/try/0/supervisor"]
        taken = re.findall(r'data-pointer="([^"]+)" data-state="taken"', graph.text)
        assert "/do/0/lookup" in taken and "/do/2/autoRefund" not in taken
        token = re.search(r'name="csrf" value="([^"]+)"', tasks.text).group(1)
        call_id = "/do/3/review/do/1/approval/try/0/supervisor"
        answered = browser.post(
            "/tasks/answer",
            data={"csrf": token, "run_id": run_id, "call_id": call_id, "approved": "on"},
        )
        assert "Answered" in answered.text, answered.text[:2000]
    with server.admin() as c:
        run = wait_for(c, run_id, {"succeeded"})
    assert '"path":"approved"' in run["output"]
