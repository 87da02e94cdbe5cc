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


def test_memory_over_the_api_is_searchable_shown_and_forgotten_per_tenant(server: Running):
    import asyncio

    from bosun import Runtime

    async def seed() -> str:
        async with Runtime(server.settings.db) as rt:
            written = await rt.memory.facts.remember(
                tenant="acme",
                scope="tenant",
                scope_id="-",
                subject="customer:7",
                attribute="email",
                value="c7@acme.example",
                source="crm",
                trusted=True,
            )
            return written.fact.id

    fact_id = asyncio.run(seed())
    acme, other = server.key("acme", "operator"), server.key("globex", "operator")
    with server.client(acme) as c:
        found = c.get("/api/memory", params={"q": "customer 7 email"}).json()
        newest = c.get("/api/memory").json()
        shown = c.get(f"/api/memory/{fact_id}").json()
    with server.client(other) as c:
        theirs = c.get("/api/memory", params={"q": "customer 7 email"}).json()
        hidden = c.get(f"/api/memory/{fact_id}").status_code
        refused = c.delete(f"/api/memory/{fact_id}").status_code
    with server.client(acme) as c:
        gone = c.delete(f"/api/memory/{fact_id}", params={"reason": "asked"}).json()
        after = c.get(f"/api/memory/{fact_id}").status_code
    assert [f["id"] for f in found] == [fact_id] and found[0]["why"]["lexical"]["rank"] == 1
    assert [f["id"] for f in newest] == [fact_id] and shown["source"] == "crm"
    assert theirs == [] and hidden == 404 and refused == 404
    assert gone == {"forgotten": fact_id} and after == 404


def test_the_console_shows_a_run_trees_team_scratchpad(server: Running):
    import asyncio

    from server_helpers import log_in

    from bosun import Runtime

    async def seed() -> None:
        async with Runtime(server.settings.db) as rt:
            await rt.memory.facts.remember(
                tenant="acme",
                scope="team",
                scope_id="run_root1",
                value="draft sent to legal",
                source="model",
                run_id="run_child1",
            )
            await rt.memory.facts.remember(
                tenant="acme",
                scope="team",
                scope_id="run_other",
                value="unrelated note",
            )

    asyncio.run(seed())
    key = server.key("acme", "viewer")
    with server.client() as c:
        assert log_in(c, key).status_code == 303
        shown = c.get("/memory", params={"scope": "team/run_root1"})
    assert shown.status_code == 200
    assert "draft sent to legal" in shown.text and "run_child1" in shown.text
    assert "unrelated note" not in shown.text
