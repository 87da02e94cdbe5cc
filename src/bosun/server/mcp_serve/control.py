"""The control plane as MCP tools: list runs, show a run, list approvals, approve, deny, kill.

Each is a thin call into `bosun.server.ops`, the layer the API and the console share, so
the rules are the same on every edge: a caller sees only its tenant's runs and approvals
(another tenant's is "not found", and an attempt on it is audited), everything shown is
redacted, and each action checks the caller's role there too. On top of that the server
lists a tool only to keys whose role may call it (`BosunMCPServer.gate`): a viewer's
client never sees `approve`.
"""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import Context
from mcp.types import ToolAnnotations
from pydantic import Field

from bosun.server import ops
from bosun.server.mcp_serve.errors import refused
from bosun.server.mcp_serve.server import BosunMCPServer, caller
from bosun.spec.vocab import ApprovalStatus, RunStatus

READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)
DECIDE = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True)
STOP = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True)


async def list_runs(
    ctx: Context,
    status: Annotated[RunStatus | None, Field(description="only runs in this status")] = None,
    agent: Annotated[str | None, Field(description="only this agent's runs")] = None,
    limit: Annotated[int, Field(ge=1, le=ops.MAX_PAGE)] = 20,
    offset: Annotated[int, Field(ge=0)] = 0,
) -> dict[str, Any]:
    """Your tenant's runs, newest first (id, agent, status, cost, times)."""
    state, principal = caller(ctx)
    async with refused():
        page = await ops.list_runs(
            state, principal, agent=agent, status=status, limit=limit, offset=offset
        )
    return page.model_dump(mode="json")


async def show_run(
    ctx: Context,
    run_id: str,
    calls: Annotated[bool, Field(description="include the run's tool calls")] = True,
) -> dict[str, Any]:
    """One run of your tenant: status, output and reason (redacted), and its tool calls."""
    state, principal = caller(ctx)
    async with refused():
        run = await ops.shown_run(state, principal, run_id)
        shown: dict[str, Any] = {
            "run": {
                "run_id": run.id,
                "agent": run.agent,
                "status": str(run.status),
                "input": run.input,
                "output": run.output,
                "reason": run.reason,
                "steps": run.steps,
                "cost_usd": run.cost,
            }
        }
        if calls:
            shown["calls"] = await ops.calls(state, principal, run_id)
    return shown


async def list_approvals(
    ctx: Context,
    status: Annotated[ApprovalStatus | None, Field(description="default: pending")] = (
        ApprovalStatus.PENDING
    ),
    run_id: Annotated[str | None, Field(description="only this run's approvals")] = None,
) -> dict[str, Any]:
    """Your tenant's approvals (pending by default), arguments redacted."""
    state, principal = caller(ctx)
    async with refused():
        found = await ops.approvals(state, principal, status, run_id)
    return {"approvals": [a.model_dump(mode="json") for a in found]}


async def approve(
    ctx: Context,
    approval_id: str,
    comment: Annotated[str | None, Field(description="kept in the audit trail")] = None,
) -> dict[str, Any]:
    """Approve a pending approval of your tenant; the run continues."""
    state, principal = caller(ctx)
    async with refused():
        decided = await ops.approve(state, principal, approval_id, comment=comment)
    return decided.model_dump(mode="json")


async def deny(
    ctx: Context,
    approval_id: str,
    reason: Annotated[str, Field(min_length=1, description="why; the run's model is told")],
) -> dict[str, Any]:
    """Deny a pending approval of your tenant; the run learns it was refused."""
    state, principal = caller(ctx)
    async with refused():
        decided = await ops.deny(state, principal, approval_id, reason)
    return decided.model_dump(mode="json")


async def kill(
    ctx: Context,
    scope: Annotated[
        str,
        Field(
            description="what to stop: tenant:<yours> (operators), run:<id>, or global,"
            " agent:<name>, tool:<name> (platform keys)"
        ),
    ],
    reason: Annotated[str, Field(min_length=1)],
) -> dict[str, Any]:
    """Set a kill switch: new actions in the scope stop at once, runs at their next step."""
    state, principal = caller(ctx)
    async with refused():
        switch = await ops.kill(state, principal, scope, reason)
    return {"scope": switch.scope, "reason": switch.reason, "set_by": switch.set_by}


# name -> (function, permission, annotations)
CONTROL_TOOLS = {
    "list_runs": (list_runs, "read", READ),
    "show_run": (show_run, "read", READ),
    "list_approvals": (list_approvals, "read", READ),
    "approve": (approve, "approve", DECIDE),
    "deny": (deny, "approve", DECIDE),
    "kill": (kill, "operate", STOP),
}


def add_control_tools(server: BosunMCPServer) -> None:
    for name, (fn, permission, hints) in CONTROL_TOOLS.items():
        server.add_tool(fn, name=name, annotations=hints)
        server.gate(name, permission)
