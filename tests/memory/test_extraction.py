"""Extraction after a run: `memory: {extract: {model: ...}}` has a declared model propose
facts once the run succeeds, as governed `remember` calls of a child run; a policy can hold
a kind of fact for approval; facts carry the extraction run and source `extraction`."""

from __future__ import annotations

import orjson
from memory_helpers import Recorder
from memory_tools import lookup_order

from bosun import Agent, Runtime
from bosun.spec.agent import SpecError

RULES = {
    "name": "facts",
    "rules": [
        {
            "name": "emails-need-approval",
            "tools": ["remember"],
            "when": 'args.attribute == "email"',
            "effect": "require_approval",
        }
    ],
}


def _remember(**kw) -> dict:
    return {"name": "remember", "arguments": kw}


def _agent(turns: list[dict], **kw) -> Agent:
    return Agent(
        name="support",
        model="scripted",
        tools=[lookup_order],
        memory={"scope": "tenant", "extract": {"model": {"provider": "scripted", "turns": turns}}},
        **kw,
    )


async def _extraction(rt: Runtime, run_id: str, tenant: str = "default"):
    (child,) = await rt.store.list_runs(tenant=tenant, parent_id=run_id, limit=10)
    return child


async def test_a_run_s_facts_are_proposed_after_it_and_written_with_provenance(db_url):
    turns = [
        {"tool_calls": [_remember(subject="order:1234", attribute="status", value="shipped")]},
        {"tool_calls": [_remember(value="ada prefers email", source="crm")]},
        {"content": "done"},
    ]
    agent = _agent(turns)
    model = Recorder([[("lookup_order", orjson.dumps({"order": "1234"}).decode())], "shipped"])
    async with Runtime(db_url) as rt:
        rt.register(agent, provider=model)
        result = await rt.run(agent, "where is order 1234?")
        child = await _extraction(rt, result.run_id)
        facts = await rt.memory.facts.listing("default")
        plain = {"provider": "scripted", "turns": [{"content": "hello"}]}
        again = await rt.run(Agent(name="plain", model=plain, memory=True), "hi")
        none = await rt.store.list_runs(tenant="default", parent_id=again.run_id, limit=10)
        sent = (await rt.store.get_run(child.id)).input
    assert result.status == "succeeded" and result.output == "shipped"
    assert child.agent == "support-extract" and child.status == "succeeded"
    assert {(f.subject, f.attribute, f.value) for f in facts} == {
        ("order:1234", "status", "shipped"),
        ("", "", "ada prefers email"),
    }
    # Provenance: the extraction run and its call; the model's own word, never trusted.
    assert {(f.source, f.trusted, f.run_id) for f in facts} == {("extraction", False, child.id)}
    assert all(f.call_id for f in facts)
    shown = orjson.loads(sent)
    assert shown["run"] == result.run_id
    assert [m["content"] for m in shown["messages"] if m["role"] in ("user", "assistant")] == [
        "where is order 1234?",
        "shipped",
    ]
    assert none == []  # no `extract`, no extraction run


async def test_a_policy_holds_a_kind_of_fact_for_approval(db_url):
    turns = [
        {"tool_calls": [_remember(subject="user:ada", attribute="email", value="ada@ex.com")]},
        {"tool_calls": [_remember(subject="user:ada", attribute="plan", value="pro")]},
        {"content": "done"},
    ]
    agent = _agent(turns, policy=RULES)
    async with Runtime(db_url) as rt:
        rt.register(agent, provider=Recorder(["noted"]))
        result = await rt.run(agent, "my email is ada@ex.com and I am on pro")
        child = await _extraction(rt, result.run_id)
        held = await rt.memory.facts.listing("default")
        (pending,) = await rt.approvals()
        await rt.approve(pending.id, by="sam")
        done = await rt.resume(child.id)  # as a worker would, once it is queued again
        after = await rt.memory.facts.listing("default")
    assert result.status == "succeeded"  # the answer never waits for its extraction
    assert child.status == "waiting_approval" and held == []
    assert done.status == "succeeded"
    assert {(f.attribute, f.value, f.source) for f in after} == {
        ("email", "ada@ex.com", "extraction"),
        ("plan", "pro", "extraction"),
    }


def test_extract_needs_a_model():
    try:
        Agent(name="a", model="scripted", memory={"extract": {"instructions": "x"}})
    except SpecError as exc:
        assert "model" in str(exc)
    else:
        raise AssertionError("an extract block without a model was accepted")
