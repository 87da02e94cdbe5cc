"""Each served agent is an MCP tool: calling it submits a run and answers with the run's end.

Why a submitted run and not `Runtime.run` in the request: the run is the same durable,
governed run the API would start (journaled, claimed by the in-process worker, resumed by
any worker if this process dies), and the MCP request only follows it. While it runs, the
caller gets a progress notification each time the journal grows (when the request carried a
progress token). A run that parks for approval answers at once with what is pending (the
approval ids, tools and arguments, redacted): the client, or a person with an approver key,
decides with the `approve`/`deny` tools, and `show_run` gives the answer once the run has
finished. A run still going after `answer_within` seconds answers with its id and status.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import orjson
from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, TextContent, ToolAnnotations

from bosun.errors import BosunError
from bosun.server import ops, schemas
from bosun.server.mcp_serve.errors import refused
from bosun.server.mcp_serve.server import BosunMCPServer, caller
from bosun.spec.agent import Agent
from bosun.spec.vocab import RunStatus

POLL_SECONDS = 0.05
_FINAL = frozenset(
    {
        RunStatus.SUCCEEDED,
        RunStatus.FAILED,
        RunStatus.CANCELLED,
        RunStatus.LIMIT_EXCEEDED,
        RunStatus.KILLED,
        RunStatus.NEEDS_ATTENTION,
    }
)
_PARKED = frozenset({RunStatus.WAITING_APPROVAL, RunStatus.WAITING, RunStatus.PAUSED})


def tool_name(agent: Agent) -> str:
    """The agent's name as an MCP tool name (letters, digits, `_`, `-`, `.`; 1-128)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", agent.name)[:128] or "agent"


def add_agent_tools(server: BosunMCPServer, agents: dict[str, Agent], answer_within: float) -> None:
    """Register one tool per agent, gated on `operate` (it starts a run). Call it after the
    other tools are in: an agent named like one of them is refused, not shadowed."""
    for agent in agents.values():
        name = tool_name(agent)
        if server._tool_manager.get_tool(name) is not None:
            raise BosunError(
                f"agent {agent.name} ({agent.source}) would be served as MCP tool {name!r},"
                " which is already a tool of `bosun mcp serve`: rename the agent"
            )
        server.add_tool(
            _runner(agent.name, answer_within),
            name=name,
            title=f"Run the {agent.name} agent",
            description=_description(agent),
            annotations=ToolAnnotations(
                read_only_hint=False, destructive_hint=False, open_world_hint=True
            ),
            structured_output=False,
        )
        server.gate(name, "operate")


def _description(agent: Agent) -> str:
    instructions = agent.instructions.strip().splitlines()
    first = instructions[0][:300] if instructions else ""
    about = f" {first}" if first else ""
    return (
        f"Run the Bosun agent {agent.name} (version {agent.version}) on `input` and answer"
        f" with its output.{about} The run is journaled and governed; if a step needs"
        " approval the answer lists what is pending (decide with approve/deny, then"
        " show_run)."
    )


def _runner(agent_name: str, answer_within: float):
    async def run_agent(
        input: str, ctx: Context, session: str | None = None, tags: dict[str, str] | None = None
    ) -> CallToolResult:
        state, principal = caller(ctx)
        body = schemas.SubmitRun(agent=agent_name, input=input, session=session, tags=tags or {})
        async with refused():
            submitted = await ops.submit(state, principal, body)
            return await follow(ctx, submitted.run_id, answer_within)

    return run_agent


async def follow(ctx: Context, run_id: str, answer_within: float) -> CallToolResult:
    """Follow the run until it ends, parks or `answer_within` passes; progress as it goes."""
    state, principal = caller(ctx)
    deadline = time.monotonic() + answer_within
    seen = -1
    while True:
        run = await ops.get_run(state, principal, run_id)
        if run.last_seq != seen:
            seen = run.last_seq
            await ctx.report_progress(
                progress=seen, message=f"run {run_id}: {run.status}, {seen} events journaled"
            )
        if run.status in _FINAL or run.status in _PARKED or time.monotonic() > deadline:
            return await answer(ctx, run_id)
        await asyncio.sleep(POLL_SECONDS)


async def answer(ctx: Context, run_id: str) -> CallToolResult:
    """The run as the caller may see it: output (redacted), status, what it waits for."""
    state, principal = caller(ctx)
    run = await ops.shown_run(state, principal, run_id)
    data: dict[str, Any] = {
        "run_id": run.id,
        "agent": run.agent,
        "status": str(run.status),
        "output": run.output,
        "reason": run.reason,
    }
    if run.status == RunStatus.WAITING_APPROVAL:
        pending = await ops.approvals(state, principal, "pending", run_id)
        data["pending_approvals"] = [a.model_dump(mode="json") for a in pending]
        lines = [
            f"- approval {a.approval_id}: {a.tool} {orjson.dumps(a.arguments).decode()}"
            f" (needs a {a.role}; rule {a.rule})"
            for a in pending
        ]
        text = (
            f"Run {run.id} is waiting for approval:\n"
            + "\n".join(lines)
            + "\nDecide with the approve or deny tool; the run then continues, and show_run"
            " gives its answer."
        )
    elif run.status == RunStatus.SUCCEEDED:
        text = run.output or ""
    elif run.status in _FINAL:
        text = f"Run {run.id} ended {run.status}: {run.reason or 'no reason recorded'}"
    else:
        text = f"Run {run.id} is {run.status}; follow it with show_run {run.id}."
    failed = run.status in _FINAL and run.status != RunStatus.SUCCEEDED
    return CallToolResult(
        content=[TextContent(type="text", text=text)], structured_content=data, is_error=failed
    )
