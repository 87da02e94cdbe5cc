"""Bosun's A2A request handler: each A2A method is a Runtime operation on runs, through
`server/ops.py` (tenants, roles, redaction, audit), so A2A has no side door.

Why not the SDK's `DefaultRequestHandlerV2`: it runs an `AgentExecutor` inside the server
process and keeps the task's truth in a `TaskStore` it writes. A Bosun run is driven by any
worker (here, another process, after a restart) and its journal is the truth, so this
handler implements the SDK's `RequestHandler` interface directly: SendMessage submits a run
(keyed by the message id, so a retried send is the same task), GetTask/ListTasks read the
projection of `tasks.py` through `BosunTaskStore`, CancelTask requests the run's cancel,
streams follow the run's journal. The SDK still does the wire: JSON-RPC and HTTP+JSON
routes, `A2A-Version` checks, errors, SSE.

A follow-up message on an `input-required` task resumes the run: delivered as the
`a2a.input` signal when the run waits for it, or, when it waits for an approval, read as
the approval's answer (`approve`/`yes` or `deny`/`no`, or a data part `{"approve": bool,
"reason": str}`), decided as the caller (who needs the approver role, as on every edge).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncGenerator
from typing import Any

from a2a.server.context import ServerCallContext
from a2a.server.request_handlers.request_handler import RequestHandler
from a2a.types import a2a_pb2 as pb
from a2a.utils.errors import (
    ContentTypeNotSupportedError,
    ExtendedAgentCardNotConfiguredError,
    InvalidParamsError,
    InvalidRequestError,
    TaskNotCancelableError,
    TaskNotFoundError,
    UnsupportedOperationError,
)
from a2a.utils.input_mode_validator import validate_input_modes
from a2a.utils.task import apply_history_length, validate_history_length
from fastapi import HTTPException

from bosun.errors import RunAlreadyFinished
from bosun.server import ops
from bosun.server.a2a import push, tasks
from bosun.server.a2a.store import BosunTaskStore
from bosun.server.keys import Principal
from bosun.server.state import ServerState
from bosun.spec.a2a import A2AInput, A2ASettings
from bosun.spec.agent import Agent
from bosun.spec.vocab import WaitKind, WaitStatus
from bosun.store.push import PushConfig

S = pb.TaskState
BLOCKING_SECONDS = 60.0  # a blocking SendMessage answers with the task as it is by then
RECHECK_SECONDS = 1.0  # runs driven by other processes commit no events here


def principal_of(context: ServerCallContext) -> Principal:
    principal = context.state.get("principal")
    if not isinstance(principal, Principal):  # the edge always sets one: fail closed
        raise InvalidRequestError(message="no caller: send `Authorization: Bearer <key>`")
    return principal


def _refused(exc: HTTPException) -> Exception:
    """ops' refusals as A2A errors: another tenant's run is a missing task."""
    if exc.status_code == 404:
        return TaskNotFoundError(message=str(exc.detail))
    return InvalidRequestError(message=str(exc.detail))


class BosunRequestHandler(RequestHandler):
    """The A2A methods of one served agent."""

    def __init__(self, state: ServerState, agent: Agent, card: pb.AgentCard):
        self.state = state
        self.agent = agent
        self.card = card
        self.settings = agent.a2a or A2ASettings()
        self.store = BosunTaskStore(state, agent)

    # -- reads ----------------------------------------------------------------------

    async def on_get_task(self, params: pb.GetTaskRequest, context: ServerCallContext) -> pb.Task:
        validate_history_length(params)
        task = await self.store.get(params.id, context)
        if task is None:
            raise TaskNotFoundError(message=f"no task {params.id!r}")
        return apply_history_length(task, params)

    async def on_list_tasks(
        self, params: pb.ListTasksRequest, context: ServerCallContext
    ) -> pb.ListTasksResponse:
        validate_history_length(params)
        return await self.store.list(params, context)

    # -- sending --------------------------------------------------------------------

    async def _send(self, params: pb.SendMessageRequest, context: ServerCallContext) -> str:
        """Start the task (a run) or continue it; returns the run id."""
        p = principal_of(context)
        message = params.message
        validate_history_length(params.configuration)
        if not message.parts:
            raise InvalidParamsError(message="the message has no parts: send at least one")
        if not message.message_id:
            raise InvalidParamsError(message="the message has no messageId")
        if self.settings.input is not A2AInput.ENVELOPE:
            # Text in: a part the run's input would drop is refused, not lost. An envelope
            # agent is handed every part as it came (its card says so: `*/*`).
            validate_input_modes(message, self.card)
            if any(part.WhichOneof("content") != "text" for part in message.parts):
                raise ContentTypeNotSupportedError(
                    message=f"agent {self.agent.name} takes text parts only (a2a.input: text)"
                )
        if params.configuration.HasField("task_push_notification_config"):
            self._check_push_url(params.configuration.task_push_notification_config.url)
        if message.task_id:
            return await self._follow_up(p, message, context, params)
        context_id = message.context_id or str(uuid.uuid4())
        text = tasks.message_input(message, self.settings.input is A2AInput.ENVELOPE)
        try:
            ops.need(p, "operate")
        except HTTPException as exc:
            raise _refused(exc) from None
        run_id = await self.state.runtime.submit(
            self.agent,
            text,
            tenant=p.tenant,
            session=context_id,
            tags={tasks.TAG_MESSAGE: message.message_id, tasks.TAG_CONTEXT: context_id},
            key=f"a2a:{self.agent.name}:{context_id}:{message.message_id}",
        )
        await self._inline_push(run_id, params, context)
        self._wake()
        return run_id

    async def _inline_push(
        self, run_id: str, params: pb.SendMessageRequest, context: ServerCallContext
    ) -> None:
        """A webhook given with the message (`configuration.taskPushNotificationConfig`)."""
        if not params.configuration.HasField("task_push_notification_config"):
            return
        given = pb.TaskPushNotificationConfig()
        given.CopyFrom(params.configuration.task_push_notification_config)
        if not given.id:  # a retried send (the same task) names the same config
            given.id = f"message-{params.message.message_id}"
        run = await self.store.run(run_id, context)
        await self._save_push(run, given)

    def _wake(self) -> None:
        if self.state.worker is not None:
            self.state.worker.wake()

    async def _follow_up(
        self,
        p: Principal,
        message: pb.Message,
        context: ServerCallContext,
        params: pb.SendMessageRequest | None = None,
    ) -> str:
        run = await self.store.run(message.task_id, context)
        if message.context_id and message.context_id != tasks.context_of(run):
            raise InvalidParamsError(
                message=f"task {run.id} belongs to context {run.session!r}, not {message.context_id!r}"
            )
        task = await self.store.project(run, context, artifacts=False)
        if task.status.state in tasks.TERMINAL:
            raise UnsupportedOperationError(
                message=f"task {run.id} is {S.Name(task.status.state)}: start a new task (omit taskId)"
            )
        if task.status.state not in tasks.INTERRUPTED:
            raise UnsupportedOperationError(
                message=f"task {run.id} is working and awaits no input; subscribe to it instead"
            )
        waits = await self.state.runtime.store.waits(run.id)
        approval = next(
            (w for w in waits if w.kind == WaitKind.APPROVAL and w.status == WaitStatus.PENDING),
            None,
        )
        try:
            if approval is not None:
                approve, reason = _decision(message)
                if approve:
                    await ops.approve(self.state, p, approval.key, comment=reason)
                else:
                    await ops.deny(self.state, p, approval.key, reason or "denied over A2A")
            else:
                await ops.signal(
                    self.state, p, run.id, tasks.INPUT_SIGNAL, tasks.signal_payload(message)
                )
        except HTTPException as exc:
            raise _refused(exc) from None
        except RunAlreadyFinished as exc:
            raise UnsupportedOperationError(message=str(exc)) from None
        if params is not None:
            await self._inline_push(run.id, params, context)
        self._wake()
        return run.id

    async def on_message_send(
        self, params: pb.SendMessageRequest, context: ServerCallContext
    ) -> pb.Task | pb.Message:
        run_id = await self._send(params, context)
        task = None
        if not params.configuration.return_immediately:
            async for seen in self._watch(run_id, context, until_settled=True):
                task = seen  # the last one: ended, needing input, or as it was at the bound
        if task is None:
            task = await self.store.get(run_id, context)
        if task is None:
            raise TaskNotFoundError(message=f"no task {run_id!r}")
        run = await self.store.run(run_id, context)
        reply = tasks.answer_of(run.output, self.settings.answer).get("reply")
        if reply is not None and task.status.state == S.TASK_STATE_COMPLETED:
            msg = tasks.agent_message(run, str(reply), "reply")
            msg.ClearField("task_id")
            return msg
        return apply_history_length(task, params.configuration)

    async def on_message_send_stream(
        self, params: pb.SendMessageRequest, context: ServerCallContext
    ) -> AsyncGenerator[Any]:
        run_id = await self._send(params, context)
        async for event in self._events(run_id, context):
            yield event

    async def on_subscribe_to_task(
        self, params: pb.SubscribeToTaskRequest, context: ServerCallContext
    ) -> AsyncGenerator[Any]:
        task = await self.store.get(params.id, context)
        if task is None:
            raise TaskNotFoundError(message=f"no task {params.id!r}")
        if task.status.state in tasks.TERMINAL:
            raise UnsupportedOperationError(
                message=f"task {params.id} is {S.Name(task.status.state)}: nothing more will happen"
            )
        async for event in self._events(params.id, context, resubscribe=True):
            yield event

    async def _events(
        self, run_id: str, context: ServerCallContext, *, resubscribe: bool = False
    ) -> AsyncGenerator[Any]:
        """The task first, then its status and artifact updates until it ends or needs
        input: what the run's journal says, as it says it."""
        sent_state: int | None = None
        sent_artifacts = 0
        first = True
        # A stream of a new message ends when the task ends or needs input; a subscription
        # follows the task through its input-required turns, to its end.
        async for task in self._watch(run_id, context, until_settled=not resubscribe):
            if first:
                first = False
                sent_state = task.status.state
                shown = pb.Task()
                shown.CopyFrom(task)
                settled = (
                    task.status.state in tasks.TERMINAL or task.status.state in tasks.INTERRUPTED
                )
                if settled and not resubscribe:
                    # already settled: the task as it was, then the updates that led here
                    shown.status.state = S.TASK_STATE_SUBMITTED
                    shown.status.ClearField("message")
                    del shown.artifacts[:]
                    sent_state = S.TASK_STATE_SUBMITTED
                yield shown
                if sent_state == task.status.state:
                    continue
            state = task.status.state
            settled = state in tasks.TERMINAL or state in tasks.INTERRUPTED
            if (
                settled
                and sent_state not in (S.TASK_STATE_WORKING, *tasks.INTERRUPTED)
                and state != S.TASK_STATE_CANCELED
            ):
                yield self._status(task, S.TASK_STATE_WORKING)
                sent_state = S.TASK_STATE_WORKING
            if settled:
                run = await self.store.run(run_id, context)
                answer = tasks.answer_of(run.output, self.settings.answer)
                arts = tasks.artifacts_of(run.id, answer)
                for art, append, last in arts[sent_artifacts:]:
                    yield pb.TaskArtifactUpdateEvent(
                        task_id=task.id,
                        context_id=task.context_id,
                        artifact=art,
                        append=append,
                        last_chunk=last,
                    )
                sent_artifacts = len(arts)
            if state != sent_state:
                yield self._status(task, state)
                sent_state = state

    @staticmethod
    def _status(task: pb.Task, state: int) -> pb.TaskStatusUpdateEvent:
        status = pb.TaskStatus(state=state, timestamp=task.status.timestamp)
        if state == task.status.state and task.status.HasField("message"):
            status.message.CopyFrom(task.status.message)
        return pb.TaskStatusUpdateEvent(task_id=task.id, context_id=task.context_id, status=status)

    async def _watch(
        self, run_id: str, context: ServerCallContext, *, until_settled: bool
    ) -> AsyncGenerator[pb.Task]:
        """The task each time it changes, until it ends or (with `until_settled`) needs
        input; woken by the journal's listener, re-read every second for other workers."""
        p = principal_of(context)
        hub = self.state.hub
        sub = hub.subscribe(p.tenant, run_id)
        try:
            last: bytes | None = None
            loop = asyncio.get_running_loop()
            ends = loop.time() + BLOCKING_SECONDS
            while True:
                task = await self.store.get(run_id, context)
                if task is None:
                    raise TaskNotFoundError(message=f"no task {run_id!r}")
                seen = task.SerializeToString(deterministic=True)
                if seen != last:
                    last = seen
                    yield task
                state = task.status.state
                if state in tasks.TERMINAL or (until_settled and state in tasks.INTERRUPTED):
                    return
                if hub.stopping.is_set() or (until_settled and loop.time() > ends):
                    return
                await sub.wait(RECHECK_SECONDS)
        finally:
            hub.unsubscribe(sub)

    # -- cancel -----------------------------------------------------------------------

    async def on_cancel_task(
        self, params: pb.CancelTaskRequest, context: ServerCallContext
    ) -> pb.Task | None:
        p = principal_of(context)
        task = await self.store.get(params.id, context)
        if task is None:
            raise TaskNotFoundError(message=f"no task {params.id!r}")
        if task.status.state in tasks.TERMINAL:
            raise TaskNotCancelableError(
                message=f"task {params.id} is {S.Name(task.status.state)}: it cannot be canceled"
            )
        try:
            done = await ops.cancel(self.state, p, params.id)
        except HTTPException as exc:
            raise _refused(exc) from None
        if not done.cancel_requested:
            raise TaskNotCancelableError(message=done.message)
        self._wake()
        # A parked run ends when a worker next holds it: wait for that, briefly.
        for _ in range(50):
            task = await self.store.get(params.id, context)
            if task is not None and task.status.state in tasks.TERMINAL:
                break
            await asyncio.sleep(0.1)
        return task

    # -- push notifications (configs here; deliveries: deliver.py) ----------------------

    async def _push_task(self, task_id: str, context: ServerCallContext, need: str) -> Any:
        p = principal_of(context)
        try:
            ops.need(p, need)
        except HTTPException as exc:
            raise _refused(exc) from None
        return await self.store.run(task_id, context)

    def _check_push_url(self, url: str) -> None:
        """Refused before anything is written (a send with a refused webhook starts nothing)."""
        reason = push.refusal(url, allow_loopback=self.state.settings.a2a_push_allow_loopback)
        if reason is not None:
            raise InvalidParamsError(message=reason)

    async def _save_push(
        self, run: Any, given: pb.TaskPushNotificationConfig
    ) -> pb.TaskPushNotificationConfig:
        self._check_push_url(given.url)
        store = self.state.runtime.store
        if given.id:
            same = await store.push_config(run.tenant, run.id, given.id)
            if (
                same is not None
                and (same.url, same.auth_scheme, same.auth_credentials)
                == (given.url, given.authentication.scheme, given.authentication.credentials)
                and given.token in ("", same.token)
            ):
                return _shown_config(same, given.tenant)  # sent again: nothing changes
        config = PushConfig(
            tenant=run.tenant,
            task_id=run.id,
            id=given.id or str(uuid.uuid4()),
            agent=run.agent,
            url=given.url,
            token=given.token or push.new_token(),
            auth_scheme=given.authentication.scheme,
            auth_credentials=given.authentication.credentials,
            created_at=time.time(),
        )
        await store.put_push_config(config, None)
        if self.state.push is not None:  # the task as it is now: the config's first delivery
            await self.state.push.observe_config(config, force=True)
            self.state.push.poke()
        return _shown_config(config, given.tenant)

    async def on_create_task_push_notification_config(
        self, params: pb.TaskPushNotificationConfig, context: ServerCallContext
    ) -> pb.TaskPushNotificationConfig:
        run = await self._push_task(params.task_id, context, "operate")
        return await self._save_push(run, params)

    async def on_get_task_push_notification_config(
        self, params: pb.GetTaskPushNotificationConfigRequest, context: ServerCallContext
    ) -> pb.TaskPushNotificationConfig:
        run = await self._push_task(params.task_id, context, "read")
        config = await self.state.runtime.store.push_config(run.tenant, run.id, params.id)
        if config is None:
            raise TaskNotFoundError(message=f"task {run.id} has no push config {params.id!r}")
        return _shown_config(config, params.tenant)

    async def on_list_task_push_notification_configs(
        self, params: pb.ListTaskPushNotificationConfigsRequest, context: ServerCallContext
    ) -> pb.ListTaskPushNotificationConfigsResponse:
        run = await self._push_task(params.task_id, context, "read")
        configs = await self.state.runtime.store.push_configs(run.tenant, run.id)
        return pb.ListTaskPushNotificationConfigsResponse(
            configs=[_shown_config(c, params.tenant) for c in configs]
        )

    async def on_delete_task_push_notification_config(
        self, params: pb.DeleteTaskPushNotificationConfigRequest, context: ServerCallContext
    ) -> None:
        run = await self._push_task(params.task_id, context, "operate")
        await self.state.runtime.store.delete_push_config(run.tenant, run.id, params.id)

    # -- the extended card: not offered ----------------------------------------------------

    async def on_get_extended_agent_card(self, params, context):  # type: ignore[no-untyped-def]
        raise ExtendedAgentCardNotConfiguredError


def _shown_config(config: PushConfig, tenant: str) -> pb.TaskPushNotificationConfig:
    shown = pb.TaskPushNotificationConfig(
        tenant=tenant, id=config.id, task_id=config.task_id, url=config.url, token=config.token
    )
    if config.auth_scheme:
        shown.authentication.scheme = config.auth_scheme
        shown.authentication.credentials = config.auth_credentials
    return shown


def _decision(message: pb.Message) -> tuple[bool, str | None]:
    """A follow-up message read as an approval's answer."""
    for part in message.parts:
        if part.WhichOneof("content") == "data":
            from google.protobuf import json_format

            data = json_format.MessageToDict(part.data)
            if isinstance(data, dict) and isinstance(data.get("approve"), bool):
                return data["approve"], data.get("reason")
    text = " ".join(p.text for p in message.parts if p.WhichOneof("content") == "text").strip()
    word = text.split(maxsplit=1)[0].lower().strip(".!,:;") if text else ""
    if word in {"approve", "approved", "yes", "y", "ok"}:
        return True, text or None
    if word in {"deny", "denied", "no", "n", "reject"}:
        return False, text or None
    raise InvalidParamsError(
        message="the task waits for an approval: answer `approve` or `deny` (optionally with a"
        ' reason), or a data part {"approve": true|false, "reason": "..."}'
    )
