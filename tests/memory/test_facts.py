"""Long-term memory: facts written by the memory tools with provenance, deduplicated and
superseded, settled by declared sources of truth, forgotten from every index, per tenant."""

from __future__ import annotations

import orjson
import pytest
from memory_helpers import Recorder
from memory_tools import lookup_order

from bosun import Agent, Runtime
from bosun.journal.events import ToolFinished
from bosun.memory.db import Db
from bosun.memory.embed import HashEmbedder
from bosun.memory.facts import FactNotFound

SOURCES = {"order.status": "lookup_order"}


def _args(**kw) -> str:
    return orjson.dumps(kw).decode()


def _agent(**memory) -> Agent:
    return Agent(
        name="support",
        model="scripted",
        tools=[lookup_order],
        memory={"sources": SOURCES, **memory},
    )


async def _run(rt: Runtime, agent: Agent, answers: list, text: str = "go", **kw):
    model = Recorder([*answers, "done"])
    rt.register(agent, provider=model)
    result = await rt.run(agent, text, **kw)
    results = [e.result for _, e in await rt.events(result.run_id) if isinstance(e, ToolFinished)]
    return result, results


async def test_a_fact_remembered_from_a_tool_is_recalled_later_with_its_provenance(db_url):
    agent = _agent()
    async with Runtime(db_url) as rt:
        first, wrote = await _run(
            rt,
            agent,
            [
                [("lookup_order", _args(order="1234"))],
                [
                    (
                        "remember",
                        _args(
                            value="shipped",
                            subject="order:1234",
                            attribute="status",
                            source="lookup_order",
                        ),
                    )
                ],
            ],
            user="ada",
        )
        _, found = await _run(
            rt, agent, [[("recall", _args(query="status of order 1234"))]], user="ada"
        )
        _, other_user = await _run(
            rt, agent, [[("recall", _args(query="status of order 1234"))]], user="bob"
        )
    memory = found[0]["memories"][0]
    assert wrote[1]["status"] == "new" and wrote[1]["source"] == "lookup_order"
    assert memory["value"] == "shipped" and memory["source"] == "lookup_order"
    assert memory["trusted"] is True and memory["run_id"] == first.run_id
    assert memory["call_id"] == "c0_0"  # where it was read, not the remember call
    assert memory["scope"] == "user/ada"
    assert "lexical" in memory["why"] and memory["why"]["rrf"] > 0  # recall explains itself
    assert other_user[0]["memories"] == []  # another user's memory is not theirs


async def test_a_new_value_supersedes_and_the_same_value_is_not_stored_twice(db_url):
    async with Runtime(db_url) as rt:
        facts = rt.memory.facts
        key = dict(tenant="t", scope="user", scope_id="ada", subject="user:ada", attribute="city")
        first = await facts.remember(**key, value="Paris", source="crm", trusted=True)
        again = await facts.remember(**key, value="Paris", source="crm", trusted=True)
        moved = await facts.remember(**key, value="Lyon", source="crm", trusted=True)
        found = await rt.memory.recall.search(
            tenant="t", scopes=[("user", "ada")], query="which city does ada live in"
        )
        history = await facts.history("t", moved.fact)
        total = await facts.count("t")
    assert (first.status, again.status, moved.status) == ("new", "duplicate", "superseded")
    assert moved.replaced == (first.fact.id,)
    assert [r.fact.value for r in found] == ["Lyon"]  # the superseded value is not recalled
    assert [f.value for f in history] == ["Paris", "Lyon"] and total == 2
    assert history[0].superseded_by == moved.fact.id


async def test_the_declared_source_wins_and_the_conflict_is_noted(db_url):
    async with Runtime(db_url) as rt:
        facts = rt.memory.facts
        key = dict(tenant="t", scope="tenant", scope_id="-", subject="order:77", attribute="status")
        await facts.remember(
            **key, value="shipped", source="lookup_order", trusted=True, observed_at=1000.0
        )
        await facts.remember(**key, value="cancelled", source="model", observed_at=2000.0)
        declared = await rt.memory.recall.search(
            tenant="t", scopes=[("tenant", "-")], query="order 77 status", sources=SOURCES
        )
        undeclared = await rt.memory.recall.search(
            tenant="t", scopes=[("tenant", "-")], query="order 77 status"
        )
    (won,) = declared
    assert won.fact.value == "shipped" and [c.value for c in won.conflicts] == ["cancelled"]
    assert won.why["value"] == "from lookup_order, the declared source of order.status"
    assert won.stale is False
    (newest,) = undeclared  # without a declared source the newest wins, the other noted
    assert newest.fact.value == "cancelled" and [c.value for c in newest.conflicts] == ["shipped"]


async def test_stale_facts_are_recalled_as_stale(sqlite_path):
    async with Runtime(sqlite_path) as rt:
        await rt.memory.facts.remember(
            tenant="t",
            scope="tenant",
            scope_id="-",
            subject="stock:kettle",
            attribute="count",
            value="12",
            source="inventory",
            observed_at=1000.0,
        )
        (old,) = await rt.memory.recall.search(
            tenant="t",
            scopes=[("tenant", "-")],
            query="kettle stock count",
            max_age=60,
        )
    assert old.stale and old.why["stale"] == "older than max_age 60s"


async def test_forget_deletes_the_fact_from_every_index_and_audits_it(db_url):
    async with Runtime(db_url, embedder=HashEmbedder()) as rt:
        written = await rt.memory.facts.remember(
            tenant="t",
            scope="user",
            scope_id="ada",
            value="ada's card ends in 4242",
        )
        seen = await rt.memory.recall.search(
            tenant="t", scopes=[("user", "ada")], query="card ending", mode="vector"
        )
        await rt.memory.forget("t", written.fact.id, actor="ops@example", reason="user asked")
        db = Db(rt.store)
        left = {
            table: (await db.rows(f"SELECT count(*) FROM {table}", (), what="count"))[0][0]
            for table in ("memories", "memory_vectors")
        }
        if db.dialect == "sqlite":
            left["memories_fts"] = (
                await db.rows("SELECT count(*) FROM memories_fts", (), what="count")
            )[0][0]
        after = [
            await rt.memory.recall.search(
                tenant="t", scopes=[("user", "ada")], query="card ending", mode=mode
            )
            for mode in ("lexical", "vector", "hybrid")
        ]
        audit = [
            r.entry for r in await rt.store.audit_records() if r.entry.action == "memory_forgotten"
        ]
        with pytest.raises(FactNotFound):
            await rt.memory.facts.get("t", written.fact.id)
    assert [r.fact.id for r in seen] == [written.fact.id] and "vector" in seen[0].why
    assert set(left.values()) == {0}
    assert after == [[], [], []]
    assert audit and audit[0].subject == written.fact.id and "4242" not in str(audit[0].data)


async def test_memories_are_per_tenant(db_url):
    async with Runtime(db_url, embedder=HashEmbedder()) as rt:
        mine = await rt.memory.facts.remember(
            tenant="acme", scope="tenant", scope_id="-", value="the vault code is 1234"
        )
        theirs = [
            await rt.memory.recall.search(
                tenant="globex", scopes=[("tenant", "-")], query="vault code", mode=mode
            )
            for mode in ("lexical", "vector", "hybrid")
        ]
        with pytest.raises(FactNotFound):
            await rt.memory.facts.get("globex", mine.fact.id)
        with pytest.raises(FactNotFound):
            await rt.memory.forget("globex", mine.fact.id, actor="x")
        still = await rt.memory.facts.get("acme", mine.fact.id)
    assert theirs == [[], [], []] and still.value == "the vault code is 1234"
