"""Progress of a long MCP call: Bosun sends a progress token on `tools/call`, and the
server's notifications are journaled coalesced as `ToolProgress` while the call runs
(shown by `bosun show`, the console's call and `bosun_tool_progress_total`), against the
reference server's `trigger-long-running-operation` over stdio and Streamable HTTP."""

from __future__ import annotations

import pytest
from interop_servers import entry, everything, write_agent

from bosun import Runtime, load_agent
from bosun.journal.calls import calls
from bosun.journal.events import ToolFinished, ToolProgress, ToolStarted
from bosun.observe.feed import Commit, RunInfo
from bosun.observe.metrics import Metrics
from bosun.observe.timeline import describe

pytestmark = pytest.mark.slow


@pytest.fixture(params=["stdio", "http"])
def server(request) -> dict[str, object]:
    if request.param == "stdio":
        node, args = everything()
        return {"name": "everything", "command": node, "args": [*args, "stdio"]}
    return {"name": "everything", "url": request.getfixturevalue("everything_http").url}


async def test_a_long_calls_progress_is_journaled_coalesced_while_it_runs(tmp_path, server):
    turns = """
        - tool_calls: [{name: trigger-long-running-operation, arguments: {duration: 1, steps: 4}}]
        - content: done
        """
    agent = load_agent(
        write_agent(tmp_path, "everything", entry(server, "trusted: true\ntimeout: 30"), turns)
    )
    commits: list[list[str]] = []
    async with Runtime(str(tmp_path / "bosun.db")) as rt:
        rt.journal.listen(lambda run_id, seq, events: commits.append([e.kind for e in events]))
        result = await rt.run(agent, "go")
        events = await rt.events(result.run_id)
    assert result.status == "succeeded", result.reason
    kinds = [type(e) for _, e in events]
    progress = [e for _, e in events if isinstance(e, ToolProgress)]
    # The server sent 4 notifications in a second: the first is journaled at once, the
    # latest just before the result; nothing in between (one every 5 s at most).
    assert 1 <= len(progress) <= 2
    assert sum(p.reports for p in progress) == 4
    assert (progress[-1].progress, progress[-1].total) == (4, 4)
    assert kinds.index(ToolStarted) < kinds.index(ToolProgress) < kinds.index(ToolFinished)
    # ...and the first was committed while the call ran, before its result existed.
    assert ["tool_progress"] in commits
    [call] = calls(events)
    assert call.progress == progress[-1]  # the one projection of calls knows it
    assert "progress trigger-long-running-operation" in (describe(progress[-1]) or "")
    metrics = Metrics()
    await metrics.handle([Commit(RunInfo(result.run_id, "everything"), 1, [e for _, e in events])])
    text = (await metrics.render()).decode()
    assert (
        'bosun_tool_progress_total{agent="everything",tool="trigger-long-running-operation"} 4.0'
        in text
    )
