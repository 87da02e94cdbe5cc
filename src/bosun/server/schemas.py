"""The HTTP API's request and response bodies (they make the OpenAPI document)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Annotated, Any, Literal

import orjson
from pydantic import Base64Bytes, BaseModel, ConfigDict, Field, model_validator

from bosun.engine.worker import Worker, WorkerHealth
from bosun.journal.redact import Redactor
from bosun.journal.text import text_problem
from bosun.spec.vocab import CallOutcome
from bosun.spec.vocab import RunStatus as RunStatus  # re-exported: the API names statuses by it
from bosun.store.base import ApiKey, ApprovalRecord, KillSwitch, RunRecord
from bosun.store.health import StoreHealth

Role = Literal["viewer", "operator", "approver", "admin", "platform"]


def _loads(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


class Error(BaseModel):
    """Every error answer: what was wrong and what to do (`rule` when a policy refused)."""

    detail: Any = Field(description="the message (a list of field errors for a 422)")
    rule: str | None = Field(default=None, description="the policy rule, when one refused")


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these error status codes."""
    return {code: {"model": Error, "description": ERROR_TEXTS[code]} for code in codes}


ERROR_TEXTS = {
    400: "the request cannot be done as asked (the message says why)",
    401: "no valid API key or console session",
    403: "the caller's role, tenant or the policy does not allow it",
    404: "no such object in the caller's tenant",
    409: "the object changed meanwhile (e.g. the approval is already decided)",
    413: "the request body is over the server's limit",
    422: "the request does not fit the documented schema",
    429: "too many failed authentications from this address",
    503: "the database cannot be used right now (see Retry-After)",
}
# Every route may answer these.
COMMON_ERRORS = (400, 401, 403, 413, 422, 429, 503)


class Strict(BaseModel):
    """A request body: unknown fields refused, and no text the journal could not store."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _storable_text(cls, data: Any) -> Any:
        """A NUL or a lone surrogate anywhere in the body is a 422 naming the field (not a
        500 when it reaches the database)."""
        for path, text in _strings(data, ()):
            problem = text_problem(text)
            if problem is not None:
                where = ".".join(str(p) for p in path) or "body"
                raise ValueError(f"`{where}` {problem}: remove it and send the request again")
        return data


def _strings(value: Any, path: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str):
                yield (*path, key), key
            yield from _strings(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, (*path, i))


class Attachment(Strict):
    """An image or audio file given with the input: stored as an artifact, journaled by
    reference, passed to the model as a content part (docs/artifacts.md)."""

    mime: str = Field(
        pattern=r"^[a-z]+/[a-z0-9.+-]+$", max_length=100, description="e.g. image/png, audio/wav"
    )
    data: Base64Bytes = Field(description="the file's bytes, base64")
    name: str | None = Field(default=None, max_length=200)


class SubmitRun(Strict):
    agent: str = Field(min_length=1, max_length=200, description="an agent this server serves")
    input: str = Field(min_length=1, max_length=100_000, description="the user's request")
    user: str | None = Field(default=None, max_length=200, description="a user of your tenant")
    session: str | None = Field(default=None, max_length=200)
    tags: dict[str, str] = Field(
        default_factory=dict,
        max_length=50,
        description="business objects the run touches, e.g. {'order': '1234'}",
    )
    attachments: list[Attachment] = Field(default_factory=list, max_length=20)


class Submitted(BaseModel):
    run_id: str
    status: str


class Run(BaseModel):
    run_id: str
    agent: str
    agent_version: str
    status: str
    tenant: str
    user: str | None
    session: str | None
    tags: dict[str, str]
    input: str
    output: str | None
    reason: str | None
    steps: int
    tool_calls: int
    input_tokens: int
    output_tokens: int
    cost: float
    created_at: float
    updated_at: float
    finished_at: float | None
    cancel_requested: bool
    parent_id: str | None = Field(description="the run that started this one; null at the top")
    root_id: str = Field(description="the top of this run's tree; its own id at the top")

    @classmethod
    def of(cls, r: RunRecord) -> Run:
        return cls(
            run_id=r.id,
            agent=r.agent,
            agent_version=r.agent_version,
            status=r.status,
            tenant=r.tenant,
            user=r.user,
            session=r.session,
            tags=r.tags,
            input=r.input,
            output=r.output,
            reason=r.reason,
            steps=r.steps,
            tool_calls=r.tool_calls,
            input_tokens=r.input_tokens,
            output_tokens=r.output_tokens,
            cost=r.cost,
            created_at=r.created_at,
            updated_at=r.updated_at,
            finished_at=r.finished_at,
            cancel_requested=r.cancel_requested,
            parent_id=r.parent_id,
            root_id=r.root_id or r.id,
        )


class RunPage(BaseModel):
    runs: list[Run]
    offset: int
    limit: int
    next_offset: int | None = Field(
        description="pass as `offset` for the next page; null at the end"
    )


class EventOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    seq: int
    kind: str
    ts: float


class CallOut(BaseModel):
    """One tool call (`bosun.journal.calls`): the same fields `bosun show --calls --json`
    prints and the console shows, redacted like the journal."""

    call_id: str
    step: int = Field(description="1-based step that proposed it")
    tool: str
    arguments: str = Field(description="what ran (or would): an approver's edit, else the proposal")
    edited: bool
    outcome: CallOutcome
    decision: str | None = Field(description="the policy verdict")
    rule: str | None
    reason: str | None
    approval_id: str | None
    approval: str | None = Field(description="who decided (or is asked), in words")
    attempts: int
    result: Any = None
    error: str | None
    duration_ms: float | None
    proposed_at: float
    ended_at: float | None
    compensated: list[str] = Field(description="what rollback did about it")


class Cancelled(BaseModel):
    run_id: str
    cancel_requested: bool
    message: str


class FeedbackIn(BaseModel):
    """A reward for a run: the learning router learns from it (docs/routing.md)."""

    model_config = ConfigDict(extra="forbid")
    score: float = Field(ge=0, le=1, description="quality: 0 bad, 1 good (thumbs: 0 or 1)")
    comment: str | None = Field(default=None, max_length=2000)


class FeedbackGiven(BaseModel):
    run_id: str
    score: float
    decisions: int = Field(description="the run's learned routing decisions it updated")


class PushDelivery(BaseModel):
    """One A2A push notification owed to, sent to, or given up on a task's webhook."""

    config_id: str
    state: str = Field(description="the A2A task state it reports, e.g. TASK_STATE_COMPLETED")
    status: str = Field(description="pending, delivered or failed")
    attempts: int
    last_error: str | None
    created_at: float
    finished_at: float | None


class Signalled(BaseModel):
    run_id: str
    name: str
    wait_id: str | None = Field(
        description="the wait the signal settled; null when kept for the run's next wait"
    )
    message: str


class Paused(BaseModel):
    run_id: str
    done: bool = Field(description="whether the pause (or unpause) was accepted")
    message: str


class RollbackRequest(Strict):
    last: int | None = Field(default=None, ge=1, le=10_000, description="only the N newest effects")


class RollbackOut(BaseModel):
    run_id: str
    ok: bool
    compensated: list[str]
    failed: list[str]
    missing: list[str]


class ToolOut(BaseModel):
    name: str
    description: str
    effect: str
    idempotent: bool
    autonomy: str
    has_undo: bool


class AgentOut(BaseModel):
    name: str
    version: str
    version_id: str
    model: str
    autonomy: str
    tool_autonomy: dict[str, str]
    policy: dict[str, Any] | None
    limits: dict[str, Any]
    tools: list[ToolOut]
    killed_by: str | None = Field(description="the kill switch scope stopping it, if any")


class Approval(BaseModel):
    approval_id: str
    run_id: str
    call_id: str
    tenant: str
    agent: str
    tool: str
    arguments: Any = Field(description="the proposed arguments (sensitive fields redacted)")
    role: str
    rule: str
    reason: str
    status: str
    created_at: float
    expires_at: float | None
    decided_by: str | None
    decided_at: float | None
    comment: str | None
    edited_arguments: Any | None
    path: list[TreeStep] = Field(
        default_factory=list,
        description="where in its run tree it was asked: the root run first, this run last",
    )
    provenance: list[ArgumentProvenance] = Field(
        default_factory=list,
        description="the arguments that made governance ask (suspect sinks), where each "
        "value was first seen; empty when the rule was not about provenance",
    )

    @classmethod
    def of(
        cls,
        a: ApprovalRecord,
        run_spec: dict[str, Any] | None,
        path: Sequence[tuple[str, str]] = (),
        provenance: dict[str, Any] | None = None,
    ) -> Approval:
        """The approval as people see it, on every edge (API, console, `bosun approvals
        --json`): redacted by the run's pinned definition (`bosun.journal.redact`).
        `provenance` is the decision's (`PolicyDecided.provenance`, see
        `bosun.journal.calls.decision_of`); values are shown from the redacted arguments."""
        a = Redactor.for_run(run_spec).approval(a)
        arguments = _loads(a.arguments)
        edited = _loads(a.edited_arguments) if a.edited_arguments else None
        return cls(
            provenance=ArgumentProvenance.suspects(provenance, arguments),
            approval_id=a.id,
            run_id=a.run_id,
            call_id=a.call_id,
            tenant=a.tenant,
            agent=a.agent,
            tool=a.tool,
            arguments=arguments,
            role=a.role,
            rule=a.rule,
            reason=a.reason,
            status=a.status,
            created_at=a.created_at,
            expires_at=a.expires_at,
            decided_by=a.decided_by,
            decided_at=a.decided_at,
            comment=a.comment,
            edited_arguments=edited,
            path=[TreeStep(agent=agent, run_id=run_id) for agent, run_id in path],
        )


class ArgumentProvenance(BaseModel):
    """One suspect argument of a held call: its value (redacted like the arguments), where
    that value was first seen, and what kind of sink it is."""

    argument: str
    value: Any = Field(description="the argument's value as the approval shows it (redacted)")
    origin: str = Field(description="user | instructions | trusted | untrusted | none")
    sink: str | None = Field(None, description="egress | target | amount; None for free text")
    tool: str | None = Field(None, description="the tool whose output first held the value")
    call_id: str | None = Field(None, description="that tool call's id")
    call_number: int | None = Field(None, description="which tool result of the run (from 1)")

    @classmethod
    def suspects(
        cls, provenance: dict[str, Any] | None, arguments: Any
    ) -> list[ArgumentProvenance]:
        out = []
        for name, entry in (provenance or {}).items():
            if not isinstance(entry, dict) or not entry.get("suspect"):
                continue
            value = arguments.get(name) if isinstance(arguments, dict) else None
            out.append(
                cls(
                    argument=name,
                    value=value,
                    origin=str(entry.get("origin", "none")),
                    sink=entry.get("sink"),
                    tool=entry.get("tool"),
                    call_id=entry.get("call"),
                    call_number=entry.get("n") or None,
                )
            )
        return out


class TreeStep(BaseModel):
    """One run on the way from a tree's root to a run deep in it."""

    agent: str
    run_id: str


class ApproveRequest(Strict):
    arguments: dict[str, Any] | None = Field(
        default=None, description="run the call with these arguments instead (validated)"
    )
    comment: str | None = Field(default=None, max_length=2000)


class DenyRequest(Strict):
    reason: str = Field(min_length=1, max_length=2000, description="what the agent is told")


class KillRequest(Strict):
    scope: str = Field(
        min_length=1,
        max_length=300,
        description="global, tenant:NAME, agent:NAME, tool:NAME or run:ID (its subtree)",
    )
    reason: str = Field(min_length=1, max_length=2000)


class KillSwitchOut(BaseModel):
    scope: str
    reason: str
    set_by: str
    set_at: float

    @classmethod
    def of(cls, k: KillSwitch) -> KillSwitchOut:
        return cls(scope=k.scope, reason=k.reason, set_by=k.set_by, set_at=k.set_at)


class Cleared(BaseModel):
    scope: str
    cleared: bool


class UsageGroup(BaseModel):
    key: str
    runs: int
    model_calls: int
    input_tokens: int
    output_tokens: int
    cost: float


class UsageOut(BaseModel):
    group_by: str
    since: float
    until: float
    tenant: str
    total: UsageGroup
    groups: list[UsageGroup]


class KeyOut(BaseModel):
    key_id: str
    tenant: str
    role: str
    name: str
    approves: list[str]
    created_at: float
    revoked_at: float | None
    last_used_at: float | None

    @classmethod
    def of(cls, k: ApiKey) -> KeyOut:
        return cls(
            key_id=k.id,
            tenant=k.tenant,
            role=k.role,
            name=k.name,
            approves=list(k.approves),
            created_at=k.created_at,
            revoked_at=k.revoked_at,
            last_used_at=k.last_used_at,
        )


ApprovalRole = Annotated[
    str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
]


class CreateKey(Strict):
    tenant: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="the caller's tenant if left out; another tenant needs a platform key",
    )
    role: Role = Field(description="`platform` keys are created by platform keys only")
    name: str = Field(min_length=1, max_length=100)
    approves: list[ApprovalRole] = Field(
        default=[],
        max_length=20,
        description="approval roles (a rule's approver_role, e.g. supervisor) this key may"
        " decide, besides the default `approver`; approver, admin and platform keys only",
    )


class CreatedKey(KeyOut):
    key: str = Field(description="the key itself: shown once, store it now")


class Revoked(BaseModel):
    key_id: str
    revoked: bool = Field(description="false if the key was already revoked")


class TenantOut(BaseModel):
    tenant: str
    keys: int = Field(description="live keys")
    revoked_keys: int
    runs: int


class Health(BaseModel):
    status: str


class StoreReadiness(BaseModel):
    """The current database outage, as this process's calls found it (`failing_since` null
    when there is none)."""

    failing_since: float | None
    last_error: str | None
    failures: int
    retrying: int  # writes waiting for the database to come back

    @classmethod
    def of(cls, health: StoreHealth) -> StoreReadiness:
        return cls(
            failing_since=health.failing_since if health.failing else None,
            last_error=health.last_error,
            failures=health.failures,
            retrying=health.retrying,
        )


class WorkerReadiness(BaseModel):
    state: str  # running | backing_off | stopped
    since: float | None
    last_error: str | None
    store_errors: dict[str, int]  # by where: poll, run, heartbeat
    restarts: int

    @classmethod
    def of(cls, health: WorkerHealth, worker: Worker) -> WorkerReadiness:
        return cls(
            state=health.state,
            since=health.since,
            last_error=health.last_error,
            store_errors=worker.store_errors,
            restarts=health.restarts,
        )


class Ready(BaseModel):
    status: str  # ok | degraded (the database fails) | unavailable (the worker is stopped)
    database: str  # ok | unreachable: ERROR
    writes: str = "ok"  # ok | failing
    workers: str  # ok | backing_off | stopped
    store: StoreReadiness | None = None
    worker: WorkerReadiness | None = None
