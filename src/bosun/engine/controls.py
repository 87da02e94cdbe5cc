"""The control plane's verbs on a `Runtime`: approve and deny, signal and complete waits,
kill switches, rollback, resolve, cancel, pause. A mixin of `Runtime`, kept apart so that
`runtime.py` holds how runs are created and driven; each verb here is one store operation
or one of the engine's own procedures (`approvals`, `waits`, `rollback`, `resolve`), so
the CLI, the API and the console all act through the same code.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from bosun.engine.approvals import check_edit
from bosun.engine.resolve import resolve
from bosun.engine.rollback import RollbackReport, rollback
from bosun.engine.waits import sweep as sweep_waits
from bosun.engine.waits import wake_killed
from bosun.errors import BosunError
from bosun.spec.vocab import ApprovalStatus
from bosun.store.base import ApprovalConflict, ApprovalRecord, KillSwitch

if TYPE_CHECKING:
    from bosun.engine.journal import JournalWriter
    from bosun.govern.governor import Governor
    from bosun.spec.agent import Agent
    from bosun.store.base import RunRecord, Store


SCOPE_KINDS = ("tenant", "agent", "tool", "run")


def check_scope(scope: str) -> str:
    kind, sep, name = scope.partition(":")
    if scope == "global" or (sep and kind in SCOPE_KINDS and name):
        return scope
    raise BosunError(
        f"kill switch scope {scope!r}: use global, tenant:NAME, agent:NAME, tool:NAME"
        " or run:ID (that run and every run below it)"
    )


class RuntimeControls:
    """Approvals, waits, kill switches, rollback, resolve, cancel and pause (see the module
    docstring). `Runtime` provides the state below."""

    store: Store
    governor: Governor
    journal: JournalWriter
    owner: str
    lease_seconds: float

    def agent_for(self, run: RunRecord) -> Agent:
        raise NotImplementedError

    async def get_run(self, run_id: str) -> RunRecord:
        raise NotImplementedError

    async def _lineage(self, run: RunRecord) -> tuple[str, ...]:
        raise NotImplementedError

    async def approvals(
        self, *, status: str | None = ApprovalStatus.PENDING, tenant: str | None = None
    ) -> list[ApprovalRecord]:
        return await self.store.list_approvals(status=status, tenant=tenant)

    async def approve(
        self,
        approval_id: str,
        *,
        by: str,
        edit: dict[str, Any] | None = None,
        comment: str | None = None,
        may_decide: Callable[[str], bool] | None = None,
    ) -> ApprovalRecord:
        """Approve a pending call. Edited arguments are a new proposal: they must fit the
        tool's schema and pass the whole policy, or `EditRefused` says which rule refused
        them and the approval stays pending (see `bosun.engine.approvals`). The run resumes
        once all its approvals are resolved."""
        arguments = None
        if edit is not None:
            approval = await self.store.get_approval(approval_id)
            if approval is None:
                raise ApprovalConflict(f"no approval {approval_id!r}")
            if approval.status != ApprovalStatus.PENDING:
                raise ApprovalConflict(
                    f"approval {approval_id} is {approval.status}"
                    + (f" by {approval.decided_by}" if approval.decided_by else "")
                )
            agent = self.agent_for(await self.get_run(approval.run_id))
            await check_edit(
                self.store, self.governor, agent, approval, edit, by=by, may_decide=may_decide
            )
            arguments = orjson.dumps(edit).decode()
        return await self.store.resolve_approval(
            approval_id, decision="approved", by=by, comment=comment, arguments=arguments
        )

    async def deny(self, approval_id: str, *, by: str, reason: str) -> ApprovalRecord:
        """Refuse a pending call; the model is told who refused and why."""
        return await self.store.resolve_approval(
            approval_id, decision="denied", by=by, comment=reason
        )

    # -- durable waits (engine/waits.py) ---------------------------------------

    async def signal(self, run_id: str, name: str, payload: Any = None) -> str | None:
        """Deliver signal `name` to the run: settles its pending wait of that name (its id is
        returned) or is kept for the next one (None). `RunAlreadyFinished` if it ended."""
        return await self.store.deliver_signal(run_id, name, payload)

    async def complete_remote(self, remote_id: str, result: Any = None) -> list[str]:
        """A remote task finished: settle the waits on it with `result`."""
        return await self.store.complete_remote(remote_id, result)

    async def sweep_waits(self) -> int:
        """Settle timers and deadlines that have passed (workers call this each poll)."""
        return await sweep_waits(self.store, time.time())

    async def wake_killed(self) -> int:
        """Queue parked runs a kill switch covers, to be ended as killed (workers call this)."""
        return await wake_killed(self.store, self._lineage)

    async def expire_approvals(self) -> list[ApprovalRecord]:
        """Apply the expiry policy to approvals nobody resolved in time (workers call this)."""
        return await self.store.expire_approvals(time.time())

    async def kill(self, scope: str, *, reason: str, by: str) -> KillSwitch:
        """From now on nothing in `scope` executes; running runs halt at their next step."""
        if not reason.strip():
            raise BosunError("a kill switch needs a reason: say why, for the audit trail")
        return await self.store.set_kill_switch(check_scope(scope), reason=reason, by=by)

    async def unkill(self, scope: str, *, by: str) -> bool:
        return await self.store.clear_kill_switch(check_scope(scope), by=by)

    async def rollback(self, run_id: str, *, by: str, last: int | None = None) -> RollbackReport:
        """Compensate the run's executed effects, newest first (see `bosun.engine.rollback`)."""
        run = await self.get_run(run_id)
        return await rollback(
            self.journal,
            self.agent_for(run),
            run_id,
            owner=self.owner,
            by=by,
            last=last,
            lease_seconds=self.lease_seconds,
        )

    async def resolve(
        self,
        run_id: str,
        *,
        by: str,
        result: Any = None,
        failed: str | None = None,
        call_id: str | None = None,
        retry: bool = False,
    ) -> str:
        """Settle a `needs_attention` run's interrupted call, or (`retry`) queue a run that
        parked with no call open again (see `bosun.engine.resolve`)."""
        return await resolve(
            self.journal,
            run_id,
            owner=self.owner,
            by=by,
            result=result,
            failed=failed,
            call_id=call_id,
            retry=retry,
            lease_seconds=self.lease_seconds,
        )

    async def cancel(self, run_id: str) -> bool:
        """Stop a run at its next step boundary. False if it had already finished."""
        await self.get_run(run_id)
        return await self.store.request_cancel(run_id)

    async def pause(self, run_id: str) -> bool:
        """Pause a run at its next step boundary (a queued or parked run, when it next runs).
        False if it is finished or paused already. `unpause` continues it."""
        await self.get_run(run_id)
        return await self.store.request_pause(run_id)

    async def unpause(self, run_id: str) -> bool:
        """Queue a paused run again: a worker continues it from its journal."""
        await self.get_run(run_id)
        return await self.store.unpause(run_id)
