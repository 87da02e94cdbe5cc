"""The governed steps of one tool call that the step loop takes before it runs the tool:
name and argument checks, the decision (policy, autonomy, quotas), and the approval's
request and resolution, the kill-switch check, and the committed start that is the last
look before the body runs. A mixin of `RunLoop`, kept apart so that the loop reads as the
loop; everything here records through `RunLoop.record` and commits with the loop's next
commit (the start commits at once), so it follows the loop's durability rule.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import ValidationError

from bosun.engine.decide import decide_call
from bosun.engine.state import CallState, RunState, rebuild
from bosun.errors import UnstorableEvent
from bosun.govern.decision import Decision
from bosun.govern.governor import kill_scopes
from bosun.journal.events import (
    ApprovalRequested,
    ApprovalResolved,
    FeedbackRecorded,
    ModelResponded,
    PolicyDecided,
    RunFinished,
    ToolFailed,
    ToolStarted,
)
from bosun.spec.vocab import ApprovalStatus
from bosun.store.base import CANCELLED, FAILED, KILLED, ApprovalRecord

if TYPE_CHECKING:
    from bosun.govern.governor import Governor
    from bosun.journal.events import Event
    from bosun.spec.agent import Agent
    from bosun.spec.tool import Tool
    from bosun.store.base import KillSwitch, Store

log = logging.getLogger("bosun.engine")


class CallSteps:
    """Checks and decisions on a proposed call (see the module docstring). `RunLoop`
    provides the state below."""

    state: RunState
    agent: Agent
    governor: Governor
    store: Store
    tools: dict[str, Tool]
    autonomy: dict[str, str]

    kill_switches: tuple[KillSwitch, ...]
    lineage: tuple[str, ...]
    cancel_requested: bool

    def record(self, event: Event) -> None:
        raise NotImplementedError

    async def commit(self) -> None:
        raise NotImplementedError

    async def park(self, reason: str, call_id: str | None = None) -> RunState:
        raise NotImplementedError

    async def finish(self, status: str, reason: str, output: str | None = None) -> RunState:
        raise NotImplementedError

    async def unstorable(self, events: Sequence[Event], exc: UnstorableEvent) -> RunState:
        """Some of `events` cannot be stored (nothing of them was): end the run as failed,
        keeping what every budget needs. A model answer that cannot be stored is journaled
        without its content, so its tokens and cost count; a retry would pay for it again."""
        state = rebuild(self.state.run_id, await self.store.events(self.state.run_id))
        self.state = state
        kept: list[Event] = []
        for event in events:
            if isinstance(event, ModelResponded):
                kept.append(dataclasses.replace(event, content=None, tool_calls=0))
        kept.append(
            RunFinished(
                status=FAILED,
                reason=f"the step failed: what it produced could not be stored ({exc})",
            )
        )
        for event in kept:
            self.record(event)
        await self.commit()
        log.error("run %s failed: %s", state.run_id, exc)
        return state

    async def kill_check(self, tool: str | None) -> RunState | None:
        """Halt (status `killed`) if a kill switch covers this run or this tool.

        The switches come back with every commit (`AppendResult.kill_switches`), so
        this costs no query; a tool's start is committed before it executes, so a
        switch set before that commit is always seen (see `tool_call`).
        """
        if not self.kill_switches:
            return None
        scopes = kill_scopes(self.state.tenant, self.agent.name, tool, self.lineage)
        switch = next((k for k in self.kill_switches if k.scope in scopes), None)
        if switch is None:
            return None
        return await self.finish(
            KILLED, f"kill switch {switch.scope} set by {switch.set_by}: {switch.reason}"
        )

    async def start(self, call: CallState) -> RunState | None:
        """Journal the call's start and commit it; the switches and cancels that commit
        returns are the last look before the body runs. Returns the final state if the
        call must not run."""
        state = self.state
        key = call.idempotency_key or f"{state.run_id}:{call.call_id}"
        self.record(
            ToolStarted(
                call_id=call.call_id, tool=call.tool, attempt=call.attempts + 1, idempotency_key=key
            )
        )
        await self.commit()
        killed = self.kill_switches and any(
            k.scope in kill_scopes(state.tenant, self.agent.name, call.tool, self.lineage)
            for k in self.kill_switches
        )
        if not killed and not self.cancel_requested:
            return None
        # Set while this call waited for its turn: it never executes.
        why = "a kill switch was set" if killed else "the run was cancelled"
        self.record(
            ToolFailed(
                call_id=call.call_id,
                tool=call.tool,
                error_type="killed" if killed else "cancelled",
                message=f"not executed: {why}",
            )
        )
        if killed:
            stopped = await self.kill_check(call.tool)
            assert stopped is not None
            return stopped
        return await self.finish(CANCELLED, "cancelled by request")

    async def decide(
        self,
        call: CallState,
        kwargs: dict[str, Any],
        *,
        approved: bool = False,
        reviewed: bool = False,
    ) -> Decision:
        """Policy, autonomy and quotas for this call, journaled. An `approved` call (a person
        approved it, perhaps with edited arguments) is decided again: a `require_approval`
        verdict is what the approval answered, and every other rule still applies. So is a
        `reviewed` one (its reviewer agent approved): the `review` verdict is answered."""
        state = self.state
        decision = decide_call(
            self.governor, self.agent, state, call.tool, self.tools[call.tool], kwargs
        )
        if approved and decision.verdict == "require_approval":
            decision = Decision(
                "allow",
                decision.rule,
                f"approved by a person ({decision.reason})",
                decision.policy_version,
                provenance=decision.provenance,
            )
        if reviewed and decision.verdict == "review":
            decision = Decision(
                "allow",
                decision.rule,
                f"approved by reviewer {decision.reviewer} ({decision.reason})",
                decision.policy_version,
                provenance=decision.provenance,
            )
        if decision.verdict in ("allow", "notify"):
            limited = await self.governor.rate_limited(
                self.agent.rate_limits,
                agent=self.agent.name,
                tool=call.tool,
                user=state.user,
                tenant=state.tenant,
            )
            if limited is not None:
                decision = Decision("deny", "rate_limit", limited, decision.policy_version)
        self.record(
            PolicyDecided(
                call_id=call.call_id,
                tool=call.tool,
                verdict=decision.verdict,
                rule=decision.rule,
                reason=decision.reason,
                policy_version=decision.policy_version,
                autonomy=self.autonomy[call.tool],
                provenance=decision.provenance,
            )
        )
        return decision

    def request_approval(self, call: CallState, decision: Decision) -> None:
        expires_at = time.time() + decision.expires_after if decision.expires_after else None
        self.record(
            ApprovalRequested(
                approval_id="apr_" + uuid.uuid4().hex[:16],
                call_id=call.call_id,
                tool=call.tool,
                arguments=call.arguments,
                role=decision.approver_role or "approver",
                rule=decision.rule,
                reason=decision.reason,
                expires_at=expires_at,
                on_expiry=decision.on_expiry,
                escalate_to=decision.escalate_to,
            )
        )

    async def collect_approval(self, call: CallState) -> None:
        """Journal a person's resolution of this call's approval, if there is one yet."""
        records = await self.store.list_approvals(status=None, run_id=self.state.run_id)
        mine: list[ApprovalRecord] = [r for r in records if r.call_id == call.call_id]
        if not mine or mine[-1].status == ApprovalStatus.PENDING:
            return
        final = mine[-1]
        decision = "approved" if final.status == "approved" else final.status
        self.record(
            ApprovalResolved(
                approval_id=final.id,
                call_id=call.call_id,
                decision=decision,
                decided_by=final.decided_by or "unknown",
                comment=final.comment,
                arguments=final.edited_arguments,
            )
        )
        feedback = {
            "approved": "edited" if final.edited_arguments else "approved_as_is",
            "denied": "denied",
        }.get(decision, decision)
        self.record(
            FeedbackRecorded(
                call_id=call.call_id,
                tool=call.tool,
                feedback=feedback,
                by=final.decided_by or "unknown",
                comment=final.comment,
            )
        )
        if decision == "denied":
            why = f": {final.comment}" if final.comment else ""
            self.record(
                ToolFailed(
                    call_id=call.call_id,
                    tool=call.tool,
                    error_type="approval_denied",
                    message=f"{final.decided_by} denied this call{why}",
                )
            )
        elif decision == "expired":
            self.record(
                ToolFailed(
                    call_id=call.call_id,
                    tool=call.tool,
                    error_type="approval_expired",
                    message="nobody approved this call in time; it was not executed",
                )
            )

    async def unknown_tool(self, call: CallState) -> RunState | None:
        if call.tool in self.agent.unavailable_tools:
            return await self.park(
                f"tool {call.tool} of pinned version {self.agent.version_id} cannot be "
                f"loaded: {self.agent.unavailable_tools[call.tool]}",
                call.call_id,
            )
        known = ", ".join(sorted(self.tools)) or "none"
        self.record(
            ToolFailed(
                call_id=call.call_id,
                tool=call.tool,
                error_type="unknown_tool",
                message=f"there is no tool named {call.tool!r}; available tools: {known}",
            )
        )
        return None

    def parse_arguments(self, call: CallState) -> dict[str, Any] | None:
        """Validated arguments, or None after journaling the error the model will see."""
        tool = self.tools[call.tool]
        try:
            raw = orjson.loads(call.arguments or "{}")
            if not isinstance(raw, dict):
                raise ValueError("arguments must be a JSON object")
            return tool.validate(raw)
        except orjson.JSONDecodeError as exc:
            details = f"arguments are not valid JSON ({exc}); send a JSON object"
        except ValidationError as exc:
            details = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}"
                for e in exc.errors()
            )
        except ValueError as exc:
            details = str(exc)
        self.record(
            ToolFailed(
                call_id=call.call_id,
                tool=call.tool,
                error_type="invalid_arguments",
                message=f"invalid arguments for {call.tool}: {details}",
            )
        )
        return None
