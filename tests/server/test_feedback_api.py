"""`POST /api/runs/{id}/feedback` and the console's thumbs: the score is recorded and the
learning router learns from it; tenants see only their runs, viewers cannot train it,
a score out of [0, 1] is a 422."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_helpers import Running, log_in, start_server, submit, wait_for

from bosun.store import open_store

AGENTS = str(Path(__file__).with_name("route_agents.py"))


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Running]:
    folder = tmp_path_factory.mktemp("feedback")
    running, stop = start_server(str(folder / "bosun.db"), agents=[f"{AGENTS}:desk"])
    try:
        yield running
    finally:
        stop()


def stored(db: str, run_id: str) -> tuple[list, object]:
    async def read():
        store = open_store(db)
        await store.open()
        try:
            return await store.feedback(run_id=run_id), await store.router_state("api-desk")
        finally:
            await store.close()

    return asyncio.run(read())


def test_feedback_is_recorded_and_learnt_from(server: Running):
    with server.admin() as c:
        run_id = submit(c, "desk", "refund my invoice")
        wait_for(c, run_id, {"succeeded"})
        r = c.post(f"/api/runs/{run_id}/feedback", json={"score": 0.9, "comment": "good"})
        assert r.status_code == 200, r.text
        assert r.json() == {"run_id": run_id, "score": 0.9, "decisions": 1}
        assert c.post(f"/api/runs/{run_id}/feedback", json={"score": 3}).status_code == 422
        events = c.get(f"/api/runs/{run_id}/events").json()
    assert [e["kind"] for e in events].count("model_routed") == 1
    [fb], state = stored(server.settings.db, run_id)
    assert (fb.score, fb.comment, fb.source) == (0.9, "good", "person")
    assert state is not None


def test_other_tenants_and_viewers_cannot_give_feedback(server: Running):
    with server.admin() as c:
        run_id = submit(c, "desk", "hi")
        wait_for(c, run_id, {"succeeded"})
    with server.client(server.key("other", "operator")) as other:
        assert other.post(f"/api/runs/{run_id}/feedback", json={"score": 1}).status_code == 404
    with server.client(server.key("default", "viewer")) as viewer:
        assert viewer.post(f"/api/runs/{run_id}/feedback", json={"score": 1}).status_code == 403
    with server.client() as anonymous:
        assert anonymous.post(f"/api/runs/{run_id}/feedback", json={"score": 1}).status_code == 401


def test_the_console_thumbs(server: Running):
    with server.admin() as c:
        run_id = submit(c, "desk", "a poem please")
        wait_for(c, run_id, {"succeeded"})
    with server.client(follow_redirects=True) as browser:
        assert log_in(browser, server.admin_key).status_code == 200
        page = browser.get(f"/runs/{run_id}")
        assert "Good answer" in page.text and "Bad answer" in page.text
        token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        after = browser.post(f"/runs/{run_id}/feedback", data={"csrf": token, "score": "0"})
    assert "feedback recorded" in after.text
    [fb], _ = stored(server.settings.db, run_id)
    assert fb.score == 0.0
