"""Handoffs, on both stores, with the scripted model: an agent hands the conversation to
another (`transfer_to_<name>`); the receiver runs as a child in the tree and the same
session, continues the conversation filtered as declared, and its answer (or its end) is
the handing run's; the journal says who had the conversation when."""

from __future__ import annotations

import pytest

from bosun import Agent, Runtime, SpecError, tool
from bosun.journal.events import HandedOff, ModelResponded, RunFinished, RunStarted
from bosun.spec.handoff import handoff

ASKED: list[list[dict]] = []


@tool(effect="read", idempotent=True)
def lookup(order: str) -> dict:
    """Look an order up."""
    return {"order": order, "status": "delivered"}


def scripted(*turns: dict) -> dict:
    return {"provider": "scripted", "turns": list(turns)}


def calls(*pairs: tuple[str, dict]) -> dict:
    return {"tool_calls": [{"name": n, "arguments": a} for n, a in pairs]}


def of(events, kind, **match):
    return [
        e
        for _, e in events
        if isinstance(e, kind) and all(getattr(e, k) == v for k, v in match.items())
    ]


def refunds(*turns: dict) -> Agent:
    return Agent(
        name="refunds",
        instructions="You handle refunds.",
        model=scripted(*(turns or ({"content": "Refund on its way for order 1234."},))),
        tools=[lookup],
    )


def triage(receiver, *turns: dict) -> Agent:
    return Agent(
        name="triage",
        instructions="Route the customer.",
        model=scripted(*(turns or (calls(("transfer_to_refunds", {"note": "wants a refund"})),))),
        handoffs=[receiver],
    )


async def test_the_receiver_continues_the_conversation_and_its_answer_is_the_runs(db_url):
    async with Runtime(db_url) as rt:
        result = await rt.run(
            triage(refunds()), "My order 1234 arrived broken, I want a refund.", session="s-42"
        )
        events = await rt.events(result.run_id)
        [child] = await rt.store.list_runs(parent_id=result.run_id)
        child_events = await rt.events(child.id)

    assert result.status == "succeeded"
    assert result.output == "Refund on its way for order 1234."  # the receiver's answer
    assert "handed off to refunds" in (result.reason or "")
    [handed] = of(events, HandedOff)
    assert (handed.from_agent, handed.to_agent, handed.run_id) == ("triage", "refunds", child.id)
    # A child in the tree, in the same session: budgets, kill switches and views cover it.
    assert child.parent_id == result.run_id and child.session == "s-42"
    [started] = of(child_events, RunStarted)
    assert started.input.startswith("My order 1234 arrived broken, I want a refund.")
    assert "triage handed this conversation over: wants a refund" in started.input
    # Only the receiver's model answered after the handoff: the triage model ran once.
    assert len(of(events, ModelResponded)) == 1
    [finished] = of(events, RunFinished)
    assert finished.ts >= of(child_events, RunFinished)[0].ts


async def test_the_model_sees_a_transfer_tool_per_handoff():
    agent = triage(refunds())
    assert "transfer_to_refunds" in agent.tool_map
    schema = agent.tool_map["transfer_to_refunds"].schema()
    assert schema["function"]["parameters"]["properties"].keys() == {"note"}
    assert [h.name for h in agent.handoffs] == ["transfer_to_refunds"]
    # Pinned whole: the version id changes with the receiver's definition.
    other = triage(refunds({"content": "something else"}))
    assert other.version_id != agent.version_id
    rebuilt = Agent.from_snapshot(agent.snapshot())
    assert rebuilt.version_id == agent.version_id and len(rebuilt.handoffs) == 1


@pytest.mark.parametrize(
    ("history", "earlier"),
    [
        ("all", [("user", "Hi, I have a problem."), ("assistant", "Tell me more.")]),
        ("last_user", []),
        ("none", []),
    ],
)
async def test_history_filters_what_the_receiver_is_handed(db_url, history, earlier):
    receiver = refunds()
    handing = Agent(
        name="triage",
        model=scripted(calls(("transfer_to_refunds", {"note": "refund for 1234"}))),
        handoffs=[handoff(receiver, history=history)],
    )
    async with Runtime(db_url) as rt:
        # A run that already holds an earlier exchange (as a receiver's run does, once
        # handed a conversation), then the customer's latest message.
        result = await rt._create(
            handing,
            "My order 1234 arrived broken.",
            status="running",
            tenant="default",
            user=None,
            session=None,
            tags=None,
            limits=None,
            history=[
                {"role": "user", "content": "Hi, I have a problem."},
                {"role": "assistant", "content": "Tell me more."},
            ],
        )
        await rt.drive(result)
        await rt._drive_tree(result.id)
        [child] = await rt.store.list_runs(parent_id=result.id)
        [started] = of(await rt.events(child.id), RunStarted)
        outcome = await rt.result(result.id)

    assert outcome.status == "succeeded" and outcome.output == "Refund on its way for order 1234."
    assert [(m["role"], m["content"]) for m in started.history or []] == earlier
    if history == "none":
        assert started.input == "[triage handed this conversation over: refund for 1234]"
    else:
        assert started.input.startswith("My order 1234 arrived broken.")


async def test_a_receiver_that_fails_ends_the_handing_run_with_its_status(db_url):
    broken = refunds({"error": "the model is down"})
    async with Runtime(db_url) as rt:
        result = await rt.run(triage(broken), "refund please")
        [child] = await rt.store.list_runs(parent_id=result.run_id)

    assert child.status == "failed"
    assert result.status == "failed"
    assert f"handed off to refunds (run {child.id}), which ended failed" in (result.reason or "")


async def test_a_kill_switch_on_the_receiver_stops_the_conversation(db_url):
    async with Runtime(db_url) as rt:
        await rt.kill("agent:refunds", reason="refunds are broken today", by="ops")
        result = await rt.run(triage(refunds()), "refund please")
        [child] = await rt.store.list_runs(parent_id=result.run_id)

    assert child.status == "killed"
    assert result.status == "killed" and "refunds are broken today" in (result.reason or "")


def test_a_handoff_must_be_an_agent():
    with pytest.raises(SpecError, match="handoffs"):
        Agent(name="triage", model=scripted({"content": "x"}), handoffs=["refunds"])
    with pytest.raises(SpecError, match="history"):
        handoff(refunds(), history="everything")


def write(folder, name: str, text: str):
    path = folder / name
    path.write_text(text)
    return path


RECEIVER = """name: refunds
model: {provider: scripted, turns: [{content: ok}]}
"""


def test_yaml_handoffs_resolve_like_agent_tools(tmp_path):
    from bosun.spec.loader import load_agent_yaml

    write(tmp_path, "refunds.yaml", RECEIVER)
    write(tmp_path, "shipping.yaml", RECEIVER.replace("refunds", "shipping"))
    path = write(
        tmp_path,
        "triage.yaml",
        """name: triage
model: {provider: scripted, turns: [{content: hi}]}
handoffs:
  - agent:refunds
  - {agent: shipping, history: last_user}
""",
    )
    agent = load_agent_yaml(str(path))
    configs = {t.name: t.source.config for t in agent.handoffs}
    assert set(configs) == {"transfer_to_refunds", "transfer_to_shipping"}
    assert configs["transfer_to_shipping"]["handoff"] == "last_user"
    assert configs["transfer_to_refunds"]["handoff"] == "all"


def test_yaml_handoff_errors_name_the_file_and_line(tmp_path):
    from bosun.spec.loader import load_agent_yaml

    write(tmp_path, "refunds.yaml", RECEIVER)
    path = write(
        tmp_path,
        "triage.yaml",
        """name: triage
model: {provider: scripted, turns: [{content: hi}]}
handoffs:
  - {agent: refunds, history: everything}
""",
    )
    with pytest.raises(SpecError, match=r"triage.yaml, line 4.*history"):
        load_agent_yaml(str(path))
    write(
        tmp_path,
        "loop.yaml",
        """name: loop
model: {provider: scripted, turns: [{content: hi}]}
handoffs: [agent:loop]
""",
    )
    with pytest.raises(SpecError, match="lists itself"):
        load_agent_yaml(str(tmp_path / "loop.yaml"))
    reviewer_history = write(
        tmp_path,
        "r.yaml",
        """name: r
model: {provider: scripted, turns: [{content: hi}]}
reviewers: [{agent: refunds, history: all}]
""",
    )
    with pytest.raises(SpecError, match="`history` is for `handoffs`"):
        load_agent_yaml(str(reviewer_history))
