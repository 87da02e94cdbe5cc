"""An approver's edit is a new proposal: it must fit the tool's schema and pass the whole
policy (deny rules, argument conditions, autonomy, the untrusted-content rules, spend) as
of the run's journal, before it is accepted. A refused edit leaves the approval pending,
says which rule refused it, and is audited.

The step loop decides the approved call once more when it runs (`RunLoop.decide`), with
the quotas counted then; this check is what lets the approver know at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from bosun.engine.decide import decide_call
from bosun.engine.state import rebuild
from bosun.errors import EditRefused, SpecError
from bosun.govern.governor import Governor
from bosun.journal.audit import AuditEntry
from bosun.spec.agent import Agent
from bosun.store.base import ApprovalRecord, Store


def _schema_errors(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}" for e in exc.errors()
    )


async def check_edit(
    store: Store,
    governor: Governor,
    agent: Agent,
    approval: ApprovalRecord,
    edit: dict[str, Any],
    *,
    by: str,
    may_decide: Callable[[str], bool] | None = None,
) -> None:
    """Raise `EditRefused` (after auditing the attempt) unless the edited call may run.

    `may_decide(role)` says whether the approver may decide an approval asking for `role`
    (None: any, as for the CLI, which has the database itself).
    """

    async def refuse(rule: str, reason: str) -> EditRefused:
        return await _refuse(store, approval, by, sorted(edit), rule, reason)

    tool = agent.tool_map.get(approval.tool)
    if tool is None:
        why = agent.unavailable_tools.get(approval.tool, "the agent has no such tool")
        raise await refuse("schema", f"the tool cannot be loaded to check the edit ({why})")
    try:
        kwargs = tool.validate(edit)
    except ValidationError as exc:
        raise await refuse(
            "schema", f"they do not fit {tool.name}: {_schema_errors(exc)}"
        ) from None
    except (TypeError, ValueError, SpecError) as exc:
        raise await refuse("schema", str(exc)) from None
    state = rebuild(approval.run_id, await store.events(approval.run_id))
    decision = decide_call(governor, agent, state, tool.name, tool, kwargs)
    if decision.verdict in ("deny", "shadow"):
        raise await refuse(decision.rule, decision.reason)
    role = decision.approver_role or "approver"
    if (
        decision.verdict == "require_approval"
        and role != approval.role
        and may_decide is not None
        and not may_decide(role)
    ):
        raise await refuse(
            decision.rule, f"the edited call needs a {role} to approve it ({decision.reason})"
        )
    cap = await governor.spend_cap_reached(agent, state.tenant)
    if cap is not None:
        raise await refuse("spend_cap", cap)


async def _refuse(
    store: Store, approval: ApprovalRecord, by: str, edited: list[str], rule: str, reason: str
) -> EditRefused:
    """Audit the refused edit (which keys were edited, never their values) and build the error."""
    await store.append_audit(
        [
            AuditEntry(
                time.time(),
                by,
                "approval_edit_refused",
                approval.id,
                {
                    "run_id": approval.run_id,
                    "tool": approval.tool,
                    "edited": edited,
                    "rule": rule,
                    "reason": reason,
                },
                approval.tenant,
            )
        ]
    )
    return EditRefused(
        f"edited arguments for {approval.tool} refused by {rule}: {reason}. "
        f"Approval {approval.id} is still pending: approve it as proposed, edit it "
        "differently, or deny it.",
        rule=rule,
    )
