"""What the API and the console do, once: every read is scoped to the caller's tenant,
every action checks the caller's role, and everything shown is redacted.

Both front ends call these functions, so a rule enforced here holds on every endpoint.
A run, approval, event or key of another tenant is reported exactly like one that does not
exist (404), so ids cannot be probed; an attempt to change one (and any other refused
cross-tenant action) is written to the audit trail as `forbidden`, naming the key.

Only management crosses tenants, and only with a platform key (see `bosun.server.keys`):
keys of any tenant, the list of tenants, platform-wide kill switches. Data never does.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import HTTPException

from bosun.engine.controls import check_scope
from bosun.journal.audit import AuditEntry
from bosun.journal.calls import calls as journal_calls
from bosun.journal.calls import held_provenance
from bosun.journal.codec import event_fields, event_to_dict
from bosun.journal.events import Event
from bosun.journal.redact import Redactor, unmask
from bosun.observe.results import ResultNotFound, whole_result
from bosun.observe.shown import masked_row
from bosun.observe.tree import tree_path
from bosun.server import keys, schemas
from bosun.server.keys import Principal
from bosun.server.state import ServerState
from bosun.spec.media import Media, references
from bosun.store.base import ApiKey, ApprovalRecord, KillSwitch, RunRecord

MAX_PAGE = 500


def _json(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def need(principal: Principal, permission: str) -> None:
    if not principal.can(permission):
        raise HTTPException(403, f"the {principal.role} role cannot do this")


def actor(principal: Principal) -> str:
    return f"{principal.name} (key {principal.key_id})"


async def forbidden(
    state: ServerState, p: Principal, tried: str, subject: str, tenant: str | None = None
) -> None:
    """Audit a refused attempt on something beyond the caller's reach (another tenant's
    object, a platform-wide control), before the caller is told 403 or 404."""
    data: dict[str, Any] = {"tried": tried, "role": p.role}
    if tenant is not None:
        data["tenant"] = tenant
    entry = AuditEntry(time.time(), actor(p), "forbidden", subject, data, p.tenant)
    await state.runtime.store.append_audit([entry])


# -- runs ------------------------------------------------------------------------


async def get_run(
    state: ServerState, p: Principal, run_id: str, attempt: str | None = None
) -> RunRecord:
    """The caller's tenant's run, else 404; an `attempt` (an action) on another tenant's run
    is audited as `forbidden`."""
    run = await state.runtime.store.get_run(run_id)
    if run is None or run.tenant != p.tenant:
        if run is not None and attempt is not None:
            await forbidden(state, p, attempt, run_id, run.tenant)
        raise HTTPException(404, f"no run {run_id!r} in tenant {p.tenant}")
    return run


async def list_runs(
    state: ServerState,
    p: Principal,
    *,
    agent: str | None = None,
    status: str | None = None,
    tag: tuple[str, str] | None = None,
    user: str | None = None,
    since: float | None = None,
    until: float | None = None,
    limit: int = 50,
    offset: int = 0,
    parent_id: str | None = None,
    root_id: str | None = None,
) -> schemas.RunPage:
    limit = max(1, min(limit, MAX_PAGE))
    runs = await state.runtime.store.list_runs(
        tenant=p.tenant,
        agent=agent,
        status=status,
        tag=tag,
        user=user,
        since=since,
        until=until,
        limit=limit + 1,
        offset=offset,
        parent_id=parent_id,
        root_id=root_id,
    )
    more = len(runs) > limit
    return schemas.RunPage(
        runs=[schemas.Run.of(r) for r in runs[:limit]],
        offset=offset,
        limit=limit,
        next_offset=offset + limit if more else None,
    )


def parse_tag(text: str | None) -> tuple[str, str] | None:
    if not text:
        return None
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise HTTPException(422, f"tag {text!r}: write it as key=value, e.g. order=1234")
    return key, value


async def events(
    state: ServerState,
    p: Principal,
    run_id: str,
    after: int = 0,
    redactor: Redactor | None = None,
) -> tuple[RunRecord, list[tuple[int, Event]]]:
    """The run's events after `after`, redacted. A stream passes the same `redactor` each
    time, so what it learned from earlier events is not read again."""
    run = await get_run(state, p, run_id)
    redactor = redactor or Redactor.for_run(run.spec)
    # The events before `after` that it has not seen are read too: a secret they hold is
    # masked wherever it appears later.
    raw = await state.runtime.store.events(run_id, min(after, redactor.seen))
    shown = redactor.events(raw, after)
    # The row's texts too (the console's run header): what the journal taught the redactor.
    return masked_row(run, redactor), shown


async def calls(state: ServerState, p: Principal, run_id: str) -> list[dict[str, Any]]:
    """The run's tool calls (`bosun.journal.calls`), from its redacted events: the shape
    of `CallOut`, and what `bosun show --calls --json` prints."""
    _, items = await events(state, p, run_id)
    return [c.as_dict() for c in journal_calls(items)]


async def call_result(
    state: ServerState, p: Principal, run_id: str, call_id: str
) -> tuple[str, bytes]:
    """(MIME type, bytes) of one call's whole result (`bosun.observe.results`): the
    artifact of a cut result, read from the run's tenant only; else 404."""
    run, items = await events(state, p, run_id)
    try:
        return await whole_result(state.runtime.store, run.tenant, items, call_id)
    except ResultNotFound as exc:
        raise HTTPException(404, str(exc)) from None


async def run_artifact(
    state: ServerState, p: Principal, run_id: str, digest: str
) -> tuple[str, bytes]:
    """An artifact one of the caller's tenant's runs references (an attachment, a tool's
    picture), for the console's <img>; 404 for one the run's journal does not name."""
    run, items = await events(state, p, run_id)
    named = any(
        r["artifact"] == digest
        for _, e in items
        for r in references(list(event_fields(e).values()))
    )
    found = await state.runtime.store.artifact(run.tenant, digest) if named else None
    if found is None:
        raise HTTPException(404, f"run {run_id} references no artifact {digest!r}")
    return found


async def shown_run(state: ServerState, p: Principal, run_id: str) -> RunRecord:
    """The run's row as people see it: its input, output and reason masked by what its
    journal teaches the redactor (a secret a tool was given, quoted in the answer), as the
    console's run header shows it. Reads the journal: for one run, not for listings."""
    run = await get_run(state, p, run_id)
    shown, _ = await events(state, p, run_id, after=run.last_seq)
    return shown


def event_dicts(items: Sequence[tuple[int, Event]]) -> list[dict[str, Any]]:
    return [event_to_dict(e, seq) for seq, e in items]


async def submit(
    state: ServerState, p: Principal, body: schemas.SubmitRun, *, key: str | None = None
) -> schemas.Submitted:
    need(p, "operate")
    agent = state.agent(body.agent)
    run_id = await state.runtime.submit(
        agent,
        body.input,
        tenant=p.tenant,
        user=body.user,
        session=body.session,
        tags=body.tags,
        key=key,
        attachments=[Media(a.data, a.mime, a.name) for a in body.attachments],
    )
    status = (await state.runtime.get_run(run_id)).status if key else "queued"
    return schemas.Submitted(run_id=run_id, status=status)


async def cancel(state: ServerState, p: Principal, run_id: str) -> schemas.Cancelled:
    need(p, "operate")
    run = await get_run(state, p, run_id, "cancel")
    requested = await state.runtime.store.request_cancel(run_id)
    message = (
        "the run stops at its next step boundary"
        if requested
        else f"the run already finished ({run.status}); nothing to cancel"
    )
    state.hub.poke(p.tenant, run_id)
    return schemas.Cancelled(run_id=run_id, cancel_requested=requested, message=message)


async def signal(
    state: ServerState, p: Principal, run_id: str, name: str, payload: Any
) -> schemas.Signalled:
    """Deliver a named signal to the caller's tenant's run (`RunAlreadyFinished`, a 409, for
    a run that has ended: the signal would wake nobody)."""
    need(p, "operate")
    await get_run(state, p, run_id, "signal")
    wait_id = await state.runtime.signal(run_id, name, payload)
    state.hub.poke(p.tenant, run_id)
    message = (
        f"delivered to wait {wait_id}; the run is queued once nothing else holds it"
        if wait_id
        else "kept: the run's next wait for this signal takes it"
    )
    return schemas.Signalled(run_id=run_id, name=name, wait_id=wait_id, message=message)


async def feedback(
    state: ServerState, p: Principal, run_id: str, body: schemas.FeedbackIn
) -> schemas.FeedbackGiven:
    """A person's reward for the caller's tenant's run (`bosun.routing.rewards`)."""
    from bosun.routing.rewards import give_feedback

    need(p, "operate")
    await get_run(state, p, run_id, "give feedback on")
    n = await give_feedback(
        state.runtime.store, run_id, body.score, comment=body.comment, tenant=p.tenant
    )
    return schemas.FeedbackGiven(run_id=run_id, score=body.score, decisions=n)


async def pause(state: ServerState, p: Principal, run_id: str) -> schemas.Paused:
    need(p, "operate")
    run = await get_run(state, p, run_id, "pause")
    done = await state.runtime.store.request_pause(run_id)
    message = (
        "the run pauses at its next step boundary (a queued or parked run: when it next runs)"
        if done
        else f"the run is {run.status}; nothing to pause"
    )
    state.hub.poke(p.tenant, run_id)
    return schemas.Paused(run_id=run_id, done=done, message=message)


async def unpause(state: ServerState, p: Principal, run_id: str) -> schemas.Paused:
    need(p, "operate")
    run = await get_run(state, p, run_id, "unpause")
    done = await state.runtime.store.unpause(run_id)
    message = (
        "the run is queued again; a worker continues it from its journal"
        if done
        else f"the run is {run.status}, not paused; nothing to continue"
    )
    state.hub.poke(p.tenant, run_id)
    return schemas.Paused(run_id=run_id, done=done, message=message)


async def rollback(
    state: ServerState, p: Principal, run_id: str, last: int | None
) -> schemas.RollbackOut:
    need(p, "operate")
    await get_run(state, p, run_id, "rollback")
    report = await state.runtime.rollback(run_id, by=actor(p), last=last)
    state.hub.poke(p.tenant, run_id)
    return schemas.RollbackOut(
        run_id=run_id,
        ok=report.ok,
        compensated=list(report.compensated),
        failed=list(report.failed),
        missing=list(report.missing),
    )


# -- approvals -------------------------------------------------------------------


async def _shown(state: ServerState, a: ApprovalRecord) -> ApprovalRecord:
    """The approval as people see it (redacted by its run's pinned definition)."""
    run = await state.runtime.store.get_run(a.run_id)
    return Redactor.for_run(run.spec if run else None).approval(a)


async def approval_out(
    state: ServerState,
    a: ApprovalRecord,
    known: dict[str, RunRecord | None] | None = None,
    journals: dict[str, list[tuple[int, Event]]] | None = None,
) -> schemas.Approval:
    """The approval as people see it, with its path in the run tree (root first) and the
    suspect arguments its decision journaled (`held_provenance`)."""
    known = {} if known is None else known
    journals = {} if journals is None else journals
    path = await tree_path(state.runtime.store, a.run_id, known)
    run = known.get(a.run_id)
    if a.run_id not in journals:
        journals[a.run_id] = await state.runtime.store.events(a.run_id)
    held = held_provenance(journals[a.run_id], a.call_id)
    return schemas.Approval.of(a, run.spec if run else None, path, held)


async def approvals(
    state: ServerState, p: Principal, status: str | None = "pending", run_id: str | None = None
) -> list[schemas.Approval]:
    records = await state.runtime.store.list_approvals(
        status=status, tenant=p.tenant, run_id=run_id
    )
    known: dict[str, RunRecord | None] = {}  # an inbox of one tree reads each run once
    journals: dict[str, list[tuple[int, Event]]] = {}
    return [await approval_out(state, a, known, journals) for a in records]


async def _approval(
    state: ServerState, p: Principal, approval_id: str, attempt: str
) -> ApprovalRecord:
    """The caller's tenant's approval, else 404 (whatever the role: a platform key decides
    only its own tenant's approvals); another tenant's is audited as `forbidden`."""
    record = await state.runtime.store.get_approval(approval_id)
    if record is None or record.tenant != p.tenant:
        if record is not None:
            await forbidden(state, p, attempt, approval_id, record.tenant)
        raise HTTPException(404, f"no approval {approval_id!r} in tenant {p.tenant}")
    return record


def _may_decide(p: Principal, record: ApprovalRecord) -> None:
    if p.may_decide(record.role):
        return
    mine = ", ".join(["approver", *sorted(p.approves)])
    raise HTTPException(
        403,
        f"approval {record.id} must be decided by a {record.role} (rule {record.rule}); this"
        f" {p.role} key decides approvals for: {mine}. An admin of tenant {p.tenant} can decide"
        " it, or create a key for it with"
        f" `bosun keys create --role approver --approves {record.role}`",
    )


async def approve(
    state: ServerState,
    p: Principal,
    approval_id: str,
    arguments: dict[str, Any] | None = None,
    comment: str | None = None,
) -> schemas.Approval:
    need(p, "approve")
    record = await _approval(state, p, approval_id, "approve")
    _may_decide(p, record)
    if arguments is not None:
        # The approver saw sensitive values masked; a part left as shown keeps its real value.
        shown = _json((await _shown(state, record)).arguments)
        arguments = unmask(arguments, shown, _json(record.arguments))
    resolved = await state.runtime.approve(
        approval_id, by=actor(p), edit=arguments, comment=comment or None, may_decide=p.may_decide
    )
    state.hub.poke(p.tenant, record.run_id)
    return await approval_out(state, resolved)


async def deny(state: ServerState, p: Principal, approval_id: str, reason: str) -> schemas.Approval:
    need(p, "approve")
    record = await _approval(state, p, approval_id, "deny")
    _may_decide(p, record)
    resolved = await state.runtime.deny(approval_id, by=actor(p), reason=reason)
    state.hub.poke(p.tenant, record.run_id)
    return await approval_out(state, resolved)


# -- kill switches -----------------------------------------------------------------


async def _may_set(state: ServerState, p: Principal, scope: str, tried: str) -> None:
    need(p, "operate")
    if p.may_set_switch(scope):
        return
    kind, _, run_id = scope.partition(":")
    if kind == "run":  # a run's subtree: the tenant's own runs, like every run action
        run = await state.runtime.store.get_run(run_id)
        if run is not None and run.tenant == p.tenant:
            return
        await forbidden(state, p, tried, scope)
        raise HTTPException(404, f"no run {run_id}")
    await forbidden(state, p, tried, scope)
    raise HTTPException(
        403,
        f"the {p.role} role may set only its own tenant's kill switch (tenant:{p.tenant});"
        f" {scope} stops other tenants too and needs a platform key",
    )


def _switch_tenant(p: Principal, scope: str) -> str:
    kind, _, name = scope.partition(":")
    return name if kind == "tenant" else p.tenant


async def kill_switches(state: ServerState, p: Principal) -> list[KillSwitch]:
    store = state.runtime.store
    seen = []
    for k in await store.kill_switches():
        kind, _, name = k.scope.partition(":")
        if kind == "run" and not p.can("platform"):  # another tenant's run stays unseen
            run = await store.get_run(name)
            if run is None or run.tenant != p.tenant:
                continue
        if p.may_see_switch(k.scope):
            seen.append(k)
    return seen


async def kill(state: ServerState, p: Principal, scope: str, reason: str) -> KillSwitch:
    scope = check_scope(scope.strip())
    await _may_set(state, p, scope, "kill")
    switch = await state.runtime.kill(scope, reason=reason, by=actor(p))
    state.hub.poke(_switch_tenant(p, scope))
    return switch


async def unkill(state: ServerState, p: Principal, scope: str) -> bool:
    scope = check_scope(scope.strip())
    await _may_set(state, p, scope, "unkill")
    cleared = await state.runtime.unkill(scope, by=actor(p))
    state.hub.poke(_switch_tenant(p, scope))
    return cleared


# -- keys and tenants --------------------------------------------------------------
# A tenant admin manages its own tenant's keys; a platform key every tenant's.


async def _may_manage(state: ServerState, p: Principal, tenant: str, tried: str) -> None:
    need(p, "admin")
    if p.manages(tenant):
        return
    await forbidden(state, p, tried, f"tenant:{tenant}", tenant)
    raise HTTPException(
        403,
        f"an {p.role} key manages only its own tenant's keys ({p.tenant}); keys of tenant"
        f" {tenant} need a platform key",
    )


async def list_keys(state: ServerState, p: Principal, tenant: str | None) -> list[ApiKey]:
    """Secrets are never shown again. A platform key lists every tenant's keys unless it
    names one; an admin key its own tenant's."""
    need(p, "admin")
    if tenant is None and not p.can("platform"):
        tenant = p.tenant
    if tenant is not None:
        await _may_manage(state, p, tenant, "list_keys")
    return await state.runtime.store.list_api_keys(tenant=tenant)


async def create_key(
    state: ServerState, p: Principal, body: schemas.CreateKey
) -> tuple[ApiKey, str]:
    tenant = body.tenant or p.tenant
    await _may_manage(state, p, tenant, "create_key")
    if body.role == "platform" and not p.can("platform"):
        await forbidden(state, p, "create_key", f"tenant:{tenant}", tenant)
        raise HTTPException(403, f"an {p.role} key cannot create platform keys")
    return await keys.create_key(
        state.runtime.store,
        tenant=tenant,
        role=body.role,
        name=body.name,
        approves=tuple(body.approves),
        by=actor(p),
    )


async def revoke_key(state: ServerState, p: Principal, key_id: str) -> bool:
    """False if it was already revoked. Another tenant's key is a 404 (audited), like one
    that does not exist; only a platform key revokes a platform key."""
    need(p, "admin")
    key = await state.runtime.store.get_api_key(key_id)
    if key is None or not p.manages(key.tenant):
        if key is not None:
            await forbidden(state, p, "revoke_key", key_id, key.tenant)
        raise HTTPException(404, f"no API key {key_id!r} in tenant {p.tenant}")
    if key.role == "platform" and not p.can("platform"):
        await forbidden(state, p, "revoke_key", key_id, key.tenant)
        raise HTTPException(403, f"key {key_id} is a platform key: only a platform key revokes it")
    return await keys.revoke_key(state.runtime.store, key_id, by=actor(p))


async def tenants(state: ServerState, p: Principal) -> list[keys.TenantSummary]:
    need(p, "platform")
    return await keys.tenants(state.runtime.store)


# -- agents ------------------------------------------------------------------------


async def agents(state: ServerState, p: Principal) -> list[schemas.AgentOut]:
    out = []
    governor = state.runtime.governor
    for name in sorted(state.agents):
        agent = state.agents[name]
        scopes = ["global", f"tenant:{p.tenant}", f"agent:{name}"]
        switch = await state.runtime.store.active_kill_switch(scopes)
        snapshot = agent.snapshot()
        out.append(
            schemas.AgentOut(
                name=agent.name,
                version=agent.version,
                version_id=agent.version_id,
                model=f"{agent.model_spec.provider}:{agent.model_spec.name}",
                autonomy=agent.autonomy,
                tool_autonomy=dict(agent.tool_autonomy),
                policy=snapshot.get("policy") if isinstance(snapshot.get("policy"), dict) else None,
                limits=snapshot["limits"],
                tools=[
                    schemas.ToolOut(
                        name=t.name,
                        description=t.description,
                        effect=t.effect,
                        idempotent=t.idempotent,
                        autonomy=governor.autonomy_of(agent, t.name),
                        has_undo=t.undo is not None,
                    )
                    for t in agent.tools  # type: ignore[union-attr]
                ],
                killed_by=switch.scope if switch else None,
            )
        )
    return out


def now() -> float:
    return time.time()
