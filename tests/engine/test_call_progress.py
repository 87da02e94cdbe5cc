"""Progress a running call reports (`ToolContext.progress`; MCP servers' notifications come
the same way) is journaled coalesced: a tool that reports a thousand times adds a couple of
`ToolProgress` events, each saying how many reports it stands for, the last one the latest."""

from __future__ import annotations

from bosun import Agent, Runtime, ToolContext, tool
from bosun.journal.events import ToolFinished, ToolProgress


@tool(effect="read")
def crunch(ctx: ToolContext) -> str:
    """Work through a thousand items, saying how far it got (from the tool's thread)."""
    assert ctx.progress is not None
    for done in range(1, 1001):
        ctx.progress(done, 1000, "item " + "x" * 300 if done == 1000 else f"item {done}")
    return "crunched"


async def test_a_thousand_progress_reports_are_a_couple_of_journal_events(sqlite_path):
    agent = Agent(
        name="cruncher",
        model={
            "provider": "scripted",
            "turns": [{"tool_calls": [{"name": "crunch", "arguments": {}}]}, {"content": "ok"}],
        },
        tools=[crunch],
    )
    async with Runtime(sqlite_path) as rt:
        result = await rt.run(agent, "go")
        events = [e for _, e in await rt.events(result.run_id)]
    assert result.status == "succeeded", result.reason
    progress = [e for e in events if isinstance(e, ToolProgress)]
    assert 1 <= len(progress) <= 2
    assert sum(p.reports for p in progress) == 1000  # every report counted, few journaled
    last = progress[-1]
    assert (last.progress, last.total, last.tool) == (1000, 1000, "crunch")
    assert len(last.message) == 200  # a report's message is kept short
    assert events.index(last) < next(i for i, e in enumerate(events) if isinstance(e, ToolFinished))
