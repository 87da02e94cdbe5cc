"""Freshness policies: an effectful call relying on a remembered fact is blocked when the
fact is stale or not from the declared source, and allowed when it is fresh."""

from __future__ import annotations

import time

import orjson
from memory_helpers import Recorder
from memory_tools import refund

from bosun import Agent, Runtime
from bosun.journal.events import ToolFailed, ToolFinished

KEY = '"order:" + args.order + ".status"'
POLICY = {
    "rules": [
        {
            "name": "refund-needs-fresh-status",
            "tools": ["refund"],
            "when": f"!({KEY} in facts) || facts[{KEY}].age > 3600.0"
            f' || facts[{KEY}].source != "lookup_order"',
            "effect": "deny",
            "reason": "the order's status must be recalled fresh (under an hour) from the"
            " order system: look it up again",
        }
    ]
}


async def _refund_after_recall(rt: Runtime, observed_at: float, source: str) -> list:
    await rt.memory.facts.remember(
        tenant="default",
        scope="tenant",
        scope_id="-",
        subject="order:9",
        attribute="status",
        value="delivered",
        source=source,
        trusted=True,
        observed_at=observed_at,
    )
    agent = Agent(
        name="refunder",
        model="scripted",
        tools=[refund],
        memory={"scope": "tenant"},
        policy=POLICY,
    )
    model = Recorder(
        [
            [("recall", orjson.dumps({"query": "order 9 status"}).decode())],
            [("refund", orjson.dumps({"order": "9"}).decode())],
            "done",
        ]
    )
    rt.register(agent, provider=model)
    result = await rt.run(agent, "refund order 9 if delivered")
    return [
        e for _, e in await rt.events(result.run_id) if isinstance(e, ToolFinished | ToolFailed)
    ]


async def test_a_refund_relying_on_a_stale_status_is_blocked(db_url):
    async with Runtime(db_url) as rt:
        events = await _refund_after_recall(rt, time.time() - 7200, "lookup_order")
    refused = events[-1]
    assert isinstance(refused, ToolFailed) and refused.error_type == "denied"
    assert "refund-needs-fresh-status" in refused.message


async def test_a_status_from_another_source_is_not_enough(sqlite_path):
    async with Runtime(sqlite_path) as rt:
        events = await _refund_after_recall(rt, time.time(), "email_export")
    assert isinstance(events[-1], ToolFailed) and events[-1].error_type == "denied"


async def test_a_fresh_status_from_the_declared_source_lets_the_refund_run(sqlite_path):
    async with Runtime(sqlite_path) as rt:
        events = await _refund_after_recall(rt, time.time() - 60, "lookup_order")
    assert isinstance(events[-1], ToolFinished) and events[-1].result == {"refunded": "9"}
