"""The memory routes of a real `bosun serve`: sessions (and, below, facts), per tenant."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "server"))
from server_helpers import Running, start_server, submit, wait_for


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running, stop = start_server(str(tmp_path_factory.mktemp("memapi") / "bosun.db"))
    try:
        yield running
    finally:
        stop()


def test_sessions_over_the_api_are_the_tenants_own(server: Running):
    acme = server.key("acme", "operator")
    other = server.key("globex", "operator")
    with server.client(acme) as c:
        for text in ("first question", "second question"):
            wait_for(c, submit(c, text=text, session="conv-1"), {"succeeded"})
        listed = c.get("/api/sessions").json()
        shown = c.get("/api/sessions/conv-1").json()
        forked = c.post("/api/sessions/conv-1/fork", json={"into": "conv-2"})
        again = c.post("/api/sessions/conv-1/fork", json={"into": "conv-2"})
        cleared = c.post("/api/sessions/conv-1/clear")
        after = c.get("/api/sessions/conv-1").json()
        branch = c.get("/api/sessions/conv-2").json()
    with server.client(other) as c:
        theirs = c.get("/api/sessions").json()
        hidden = c.get("/api/sessions/conv-1")
        refused = c.post("/api/sessions/conv-1/clear")
    assert [s["name"] for s in listed] == ["conv-1"] and listed[0]["runs"] == 2
    assert [t["input"] for t in shown["turns"]] == ["first question", "second question"]
    assert forked.status_code == 200 and again.status_code == 409
    assert cleared.status_code == 200 and after["turns"] == []
    assert [t["input"] for t in branch["turns"]] == ["first question", "second question"]
    assert theirs == [] and hidden.status_code == 404 and refused.status_code == 404
