"""The `a2a` tool source: the skills of one remote A2A agent, for every run of a worker.

- `open()` fetches the agent card (with the worker's credentials for the schemes it
  declares) and makes the SDK's client; `discover()` serves one definition per skill,
  pinned with the card's version (`results.definitions_of`).
- `invoke()` sends one message (`SendMessage`, `returnImmediately`: the remote agent
  answers with its task at once) whose message id is the call's idempotency key. A task
  that is already done is the call's result; a running one is a `Wait(remote=...)` keyed
  by the task's id, which the loop journals before the run parks: from then on the task
  is followed by the worker's watcher (`watcher.py`), never sent again. An answer to a
  task that asked for input (`task_id` given) continues that same task.
- `task()` and `cancel()` are what the watcher and the engine's cancel/kill use.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx

from bosun.errors import SourceUnavailable
from bosun.spec.a2a_remote import A2aAgent, wait_key
from bosun.spec.definition import SourceSpec, ToolDefinition
from bosun.spec.wait import Wait
from bosun.tools.a2a.client import describe, fetch_card, make_client, sent_may_have_arrived
from bosun.tools.a2a.results import (
    COMPLETED,
    FAILED_STATES,
    INPUT_REQUIRED,
    A2aTaskFailed,
    definitions_of,
    failure,
    message_result,
    state_name,
    task_result,
)
from bosun.tools.sources import Call

log = logging.getLogger("bosun.tools.a2a")

# Message metadata naming the skill the model chose (A2A routes by content; a remote agent
# may use it).
SKILL_META = "dev.bosun/skill"


def remote_timeout(label: str, seconds: float) -> dict[str, Any]:
    """The outcome of a remote task that ran past the entry's `task_timeout`."""
    return {
        "remote_outcome": {
            "failed": {
                "error_type": "remote_timeout",
                "message": f"the A2A agent {label} did not finish within task_timeout "
                f"({seconds:g}s); the task is cancelled on the remote",
            }
        }
    }


class A2aSource:
    """One remote A2A agent as a tool source (see the module docstring)."""

    def __init__(self, spec: SourceSpec):
        self.spec = spec
        self.agent = A2aAgent.model_validate(spec.config["agent"])
        self.trusted = bool(spec.config.get("trusted", False))
        self.label = self.agent.card_url
        self._http: httpx.AsyncClient | None = None
        self._client: Any = None
        self._card: Any = None

    async def open(self) -> None:
        http = httpx.AsyncClient(timeout=httpx.Timeout(self.agent.connect_timeout))
        try:
            card = await fetch_card(http, self.agent)
            self._client = make_client(card, self.agent, http, self.label)
        except BaseException:
            await http.aclose()
            raise
        self._http, self._card = http, card
        self.label = card.name or self.label

    async def discover(self) -> list[ToolDefinition]:
        return definitions_of(self._card, self.spec, self.trusted)

    def _sdk(self) -> Any:
        if self._client is None:
            raise SourceUnavailable(f"A2A agent {self.label} is not open", sent=False)
        return self._client

    async def invoke(self, name: str, arguments: dict[str, Any], call: Call) -> Any:
        from a2a.types.a2a_pb2 import (
            Message,
            Part,
            Role,
            SendMessageConfiguration,
            SendMessageRequest,
        )
        from google.protobuf.struct_pb2 import Struct

        client = self._sdk()
        message = Message(
            message_id=call.context.idempotency_key or call.context.call_id,
            role=Role.ROLE_USER,
            parts=[Part(text=str(arguments["message"]))],
        )
        meta = Struct()
        meta.update({SKILL_META: name})
        message.metadata.CopyFrom(meta)
        task_id = arguments.get("task_id")
        if task_id:  # an answer to a task that asked for input: continue that task
            asked = await self.task(str(task_id))
            if state_name(asked) != INPUT_REQUIRED:
                raise ValueError(
                    f"task {task_id} of {self.label} is {state_name(asked)}, not waiting for "
                    "input: call without task_id to start a new task"
                )
            message.task_id, message.context_id = asked.id, asked.context_id
        request = SendMessageRequest(
            message=message, configuration=SendMessageConfiguration(return_immediately=True)
        )
        try:
            async with asyncio.timeout(call.timeout):
                answer = await anext(aiter(client.send_message(request)), None)
        except TimeoutError:
            raise
        except SourceUnavailable:
            raise
        except Exception as exc:
            raise self._error(exc, name) from exc
        if answer is None:
            raise SourceUnavailable(f"A2A agent {self.label} answered nothing", sent=True)
        limit = self.agent.max_result_chars
        if answer.HasField("message"):
            return message_result(answer.message, limit)
        task = answer.task
        return self.settled(task) or Wait(
            remote=wait_key(self.spec, task.id),
            deadline=self.agent.task_timeout,
            on_deadline=remote_timeout(self.label, self.agent.task_timeout),
        )

    def settled(self, task: Any) -> dict[str, Any] | None:
        """A task that ended (or asked for input) as the call's result; None while it runs.
        A failure raises `A2aTaskFailed` (the call fails with its message)."""
        state = state_name(task)
        if state in (COMPLETED, INPUT_REQUIRED):
            return task_result(task, self.label, self.agent.max_result_chars)
        if state in FAILED_STATES:
            raise A2aTaskFailed(failure(task, self.label))
        return None

    def _error(self, exc: BaseException, what: str) -> BaseException:
        sent = sent_may_have_arrived(exc)
        if sent is not None:
            return SourceUnavailable(f"A2A agent {self.label}: {what}: {describe(exc)}", sent=sent)
        text = str(exc)
        if "HTTP Error 401" in text or "HTTP Error 403" in text:
            how = self.agent.token_env or ", ".join(self.agent.credentials.values())
            return PermissionError(
                f"A2A agent {self.label} refused the request ({text.split(':')[0]}); the "
                f"entry's credentials: {how or 'none (add token_env or credentials)'}"
            )
        return exc

    async def task(self, task_id: str) -> Any:
        """The remote task as it is now (`GetTask`). `SourceUnavailable` when the agent
        cannot be reached; `LookupError` when it does not know the task."""
        from a2a.types.a2a_pb2 import GetTaskRequest
        from a2a.utils.errors import TaskNotFoundError

        client = self._sdk()
        try:
            async with asyncio.timeout(self.agent.connect_timeout):
                return await client.get_task(GetTaskRequest(id=task_id, history_length=0))
        except TaskNotFoundError as exc:
            raise LookupError(f"the A2A agent {self.label} does not know task {task_id}") from exc
        except TimeoutError:
            raise SourceUnavailable(
                f"A2A agent {self.label}: reading task {task_id} timed out", sent=False
            ) from None
        except Exception as exc:
            error = self._error(exc, f"reading task {task_id}")
            if isinstance(error, SourceUnavailable):
                error.sent = False  # a read: nothing to repeat or fear
            raise error from exc

    async def cancel(self, task_id: str) -> bool:
        """Ask the remote agent to cancel the task (`CancelTask`); False when it could not
        (already ended, unknown, unreachable: logged)."""
        from a2a.types.a2a_pb2 import CancelTaskRequest

        client = self._sdk()
        try:
            async with asyncio.timeout(self.agent.connect_timeout):
                await client.cancel_task(CancelTaskRequest(id=task_id))
        except Exception as exc:
            log.info("A2A agent %s: cancelling task %s: %s", self.label, task_id, describe(exc))
            return False
        log.info("A2A agent %s: task %s cancelled", self.label, task_id)
        return True

    async def cancel_remote(self, key: str) -> bool:
        """The engine's cancel of a remote wait's task (a run cancelled or killed while it
        waited on it): `key` is the wait's key."""
        from bosun.spec.a2a_remote import parse_key

        parsed = parse_key(key)
        return parsed is not None and await self.cancel(parsed[1])

    async def close(self) -> None:
        http, self._http, self._client = self._http, None, None
        if http is not None:
            await http.aclose()


__all__ = ["A2aSource", "remote_timeout"]
