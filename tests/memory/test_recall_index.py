"""Recall's indexes stay right as they get faster: the AND-first lexical pass still fills
the pool from the OR ranking, the in-process vector matrix follows new facts of its tenant
only, and a forgotten fact leaves every index and every process's recall."""

from __future__ import annotations

from bosun import Runtime
from bosun.memory.embed import HashEmbedder
from bosun.memory.service import Memory

SCOPE = [("tenant", "-")]


async def _note(memory: Memory, tenant: str, value: str) -> str:
    written = await memory.facts.remember(tenant=tenant, scope="tenant", scope_id="-", value=value)
    return written.fact.id


async def test_facts_with_every_word_come_first_and_partial_matches_fill_the_rest(db_url):
    async with Runtime(db_url) as rt:
        both = await _note(rt.memory, "t", "the blue kettle is on the shelf")
        kettle = await _note(rt.memory, "t", "a kettle was ordered")
        blue = await _note(rt.memory, "t", "blue paint for the door")
        await _note(rt.memory, "t", "nothing in common here")
        found = await rt.memory.recall.search(
            tenant="t", scopes=SCOPE, query="blue kettle", mode="lexical", limit=5
        )
    ids = [r.fact.id for r in found]
    assert ids[0] == both
    assert set(ids) == {both, kettle, blue}


async def test_the_vector_matrix_follows_new_facts_of_its_tenant_only(db_url):
    async with Runtime(db_url, embedder=HashEmbedder()) as rt:
        recall = rt.memory.recall
        first = await _note(rt.memory, "t", "ada's kettle is blue")
        seen = await recall.search(tenant="t", scopes=SCOPE, query="kettle", mode="vector")
        other = await _note(rt.memory, "other", "grace's kettle is red")
        later = await _note(rt.memory, "t", "bob's kettle is green")
        again = await recall.search(tenant="t", scopes=SCOPE, query="kettle", mode="vector")
        theirs = await recall.search(tenant="other", scopes=SCOPE, query="kettle", mode="vector")
    assert [r.fact.id for r in seen] == [first]
    assert {r.fact.id for r in again} == {first, later}
    assert [r.fact.id for r in theirs] == [other]


async def test_a_fact_forgotten_by_another_process_leaves_this_ones_recall(db_url):
    async with Runtime(db_url, embedder=HashEmbedder()) as rt:
        here = rt.memory
        gone = await _note(here, "t", "ada's card ends in 4242")
        kept = await _note(here, "t", "ada's card is a visa")
        before = await here.recall.search(tenant="t", scopes=SCOPE, query="card", mode="vector")
        elsewhere = Memory(rt.store, HashEmbedder())  # another worker's memory, own matrix
        await elsewhere.forget("t", gone, actor="ops@example")
        after = {
            mode: [
                r.fact.id
                for r in await here.recall.search(tenant="t", scopes=SCOPE, query="card", mode=mode)
            ]
            for mode in ("lexical", "vector", "hybrid")
        }
        kept_num = (await here.facts.get("t", kept)).num
        await here.forget("t", kept, actor="ops@example")  # this process drops it at once
        held = list(here.recall._matrices["t"].nums)
        empty = await here.recall.search(tenant="t", scopes=SCOPE, query="card", mode="hybrid")
    assert {r.fact.id for r in before} == {gone, kept}
    assert after == {"lexical": [kept], "vector": [kept], "hybrid": [kept]}
    assert kept_num not in held and len(held) == 1  # the other's lingers, never recalled
    assert empty == []
