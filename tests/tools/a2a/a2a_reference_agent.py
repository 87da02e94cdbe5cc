"""A reference A2A agent for Bosun's client tests, written with the a2a-sdk's own server
classes (`DefaultRequestHandlerV2`, `create_agent_card_routes`, `create_jsonrpc_routes`,
`create_rest_routes`), served by uvicorn on 127.0.0.1 in a process of its own, so a test
can stop it, restart it, or leave it running while Bosun's worker is SIGKILLed.

    python a2a_reference_agent.py --port 8123 --state DIR [--token T] [--version 1.0.0]
                         [--slow 3] [--binding JSONRPC|HTTP+JSON]

Skills (chosen by the message's `dev.bosun/skill` metadata, as Bosun sends it):

- `echo`: completes at once with the artifact "echo: <text>";
- `fail`: fails with the status message "cannot do <text>";
- `ask`: asks for input ("which account?"), then completes with "account <answer>";
- `hello`: answers with a message, no task ("hello, <text>");
- `slow`: works for `--slow` seconds, reporting "step N" status messages, then completes
  with "slow done: <text>". Its tasks are kept in DIR (`tasks.json`), so a restarted
  server still knows them; one whose time has passed while no process ran it completes
  when it is next read.

Every SendMessage that reaches the agent is counted in DIR/sends.json (per skill and per
message id): the tests' proof that Bosun never sent a task twice. With `--token`, every
request but the card's needs `Authorization: Bearer <token>` (the card declares it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import threading
import time

import uvicorn
from a2a.helpers.proto_helpers import new_task_from_user_message
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.request_handlers.default_request_handler_v2 import DefaultRequestHandlerV2
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes, create_rest_routes
from a2a.server.tasks import TaskStore, TaskUpdater
from a2a.types.a2a_pb2 import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
    HTTPAuthSecurityScheme,
    Part,
    SecurityRequirement,
    SecurityScheme,
    StringList,
    Task,
    TaskState,
)
from google.protobuf.json_format import MessageToDict, ParseDict
from starlette.applications import Starlette
from starlette.responses import JSONResponse

SKILL_META = "dev.bosun/skill"
RUNNING: set[str] = set()  # slow tasks this process is working on (or has finished)
LOCK = threading.Lock()


class FileTaskStore(TaskStore):
    """Tasks in memory and in DIR/tasks.json (rewritten on every save)."""

    def __init__(self, state: str, slow: float):
        self.path = os.path.join(state, "tasks.json")
        self.due_path = os.path.join(state, "due.json")
        self.slow = slow
        self.tasks: dict[str, dict] = {}
        if os.path.exists(self.path):
            with open(self.path) as f:
                self.tasks = json.load(f)

    def _write(self) -> None:
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.tasks, f)
        os.replace(tmp, self.path)

    async def save(self, task, context=None) -> None:
        with LOCK:
            self.tasks[task.id] = MessageToDict(task)
            self._write()

    async def get(self, task_id, context=None):
        with LOCK:
            data = self.tasks.get(task_id)
        if data is None:
            return None
        task = ParseDict(data, Task())
        due = _read(self.due_path).get(task_id)
        if (
            task.status.state == TaskState.TASK_STATE_WORKING
            and due is not None
            and due <= time.time()
            and task_id not in RUNNING
        ):  # its time passed while no process worked on it (the server restarted)
            task.status.state = TaskState.TASK_STATE_COMPLETED
            task.status.ClearField("message")
            text = _read(self.due_path).get(task_id + ":text", "")
            task.artifacts.add(artifact_id="a1", name="answer", parts=[Part(text=text)])
            await self.save(task)
        return task

    async def list(self, params, context=None):
        from a2a.types.a2a_pb2 import ListTasksResponse

        with LOCK:
            tasks = [ParseDict(d, Task()) for d in self.tasks.values()]
        return ListTasksResponse(tasks=tasks)

    async def delete(self, task_id, context=None) -> None:
        with LOCK:
            self.tasks.pop(task_id, None)
            self._write()


def _read(path: str) -> dict:
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def _bump(path: str, *keys: str) -> None:
    with LOCK:
        counts = _read(path)
        for key in keys:
            counts[key] = counts.get(key, 0) + 1
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(counts, f)
        os.replace(tmp, path)


def _set(path: str, key: str, value) -> None:
    with LOCK:
        data = _read(path)
        data[key] = value
        with open(path + ".tmp", "w") as f:
            json.dump(data, f)
        os.replace(path + ".tmp", path)


class Executor(AgentExecutor):
    def __init__(self, state: str, slow: float):
        self.state, self.slow = state, slow

    async def execute(self, context: RequestContext, event_queue) -> None:
        message = context.message
        skill = dict(message.metadata).get(SKILL_META, "echo") if message else "echo"
        text = context.get_user_input()
        _bump(os.path.join(self.state, "sends.json"), skill, message.message_id, "_total")
        if skill == "hello":  # an answer as a message: no task at all
            from a2a.types.a2a_pb2 import Message, Role

            await event_queue.enqueue_event(
                Message(
                    message_id=f"re-{message.message_id}",
                    role=Role.ROLE_AGENT,
                    parts=[Part(text=f"hello, {text}")],
                )
            )
            return
        task = context.current_task
        if task is None:
            task = new_task_from_user_message(message)
            await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        say = lambda words: updater.new_agent_message([Part(text=words)])  # noqa: E731
        if skill == "echo":
            await updater.add_artifact([Part(text=f"echo: {text}")], name="answer")
            await updater.complete()
        elif skill == "fail":
            await updater.failed(say(f"cannot do {text}"))
        elif skill == "ask":
            if task.status.state == TaskState.TASK_STATE_INPUT_REQUIRED:
                await updater.add_artifact([Part(text=f"account {text}")], name="answer")
                await updater.complete()
            else:
                await updater.requires_input(say("which account?"))
        elif skill == "slow":
            due_path = os.path.join(self.state, "due.json")
            _set(due_path, task.id, time.time() + self.slow)
            _set(due_path, task.id + ":text", f"slow done: {text}")
            RUNNING.add(task.id)
            try:
                await updater.start_work(say("started"))
                step = 0
                while time.time() < _read(due_path)[task.id]:
                    await asyncio.sleep(0.2)
                    step += 1
                    await updater.update_status(TaskState.TASK_STATE_WORKING, say(f"step {step}"))
                await updater.add_artifact([Part(text=f"slow done: {text}")], name="answer")
                await updater.complete()
            except BaseException:
                RUNNING.discard(task.id)  # cancelled: nothing completes it here any more
                raise
            # Kept in RUNNING: its completion is still being saved by the SDK, and a read
            # meanwhile must not complete it a second time.
        else:
            await updater.reject(say(f"no skill {skill}"))

    async def cancel(self, context: RequestContext, event_queue) -> None:
        _bump(os.path.join(self.state, "cancels.json"), context.task_id or "?")
        task = context.current_task
        updater = TaskUpdater(event_queue, context.task_id, task.context_id if task else "")
        await updater.cancel()


def card(port: int, version: str, token: bool, binding: str) -> AgentCard:
    base = f"http://127.0.0.1:{port}"
    interfaces = {
        "JSONRPC": AgentInterface(
            url=f"{base}/a2a/jsonrpc", protocol_binding="JSONRPC", protocol_version="1.0"
        ),
        "HTTP+JSON": AgentInterface(
            url=f"{base}/a2a/rest", protocol_binding="HTTP+JSON", protocol_version="1.0"
        ),
    }
    first = interfaces.pop(binding)
    skills = [
        AgentSkill(id="echo", name="Echo", description="Says back what it is told.", tags=["test"]),
        AgentSkill(id="fail", name="Fail", description="Always fails.", tags=["test"]),
        AgentSkill(
            id="ask", name="Ask", description="Asks which account, then answers.", tags=["test"]
        ),
        AgentSkill(id="slow", name="Slow", description="Takes a while.", tags=["test"]),
        AgentSkill(id="hello", name="Hello", description="Answers at once.", tags=["test"]),
    ]
    built = AgentCard(
        name="reference",
        description="The a2a-sdk reference agent of Bosun's tests",
        version=version,
        supported_interfaces=[first, *interfaces.values()],
        capabilities=AgentCapabilities(streaming=False),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=skills,
    )
    if token:
        built.security_schemes["bearer"].CopyFrom(
            SecurityScheme(http_auth_security_scheme=HTTPAuthSecurityScheme(scheme="bearer"))
        )
        built.security_requirements.append(SecurityRequirement(schemes={"bearer": StringList()}))
    return built


def app(port: int, state: str, *, token: str | None, version: str, slow: float, binding: str):
    agent_card = card(port, version, bool(token), binding)
    handler = DefaultRequestHandlerV2(
        agent_executor=Executor(state, slow),
        task_store=FileTaskStore(state, slow),
        agent_card=agent_card,
    )
    routes = [
        *create_agent_card_routes(agent_card),
        *create_jsonrpc_routes(handler, rpc_url="/a2a/jsonrpc"),
        *create_rest_routes(handler, path_prefix="/a2a/rest"),
    ]
    from starlette.middleware import Middleware
    from starlette.middleware.base import BaseHTTPMiddleware

    async def bearer(request, call_next):
        public = request.url.path.startswith("/.well-known/")
        if token and not public and request.headers.get("authorization") != f"Bearer {token}":
            _bump(os.path.join(state, "refused.json"), "_total")
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        return await call_next(request)

    application = Starlette(
        routes=routes, middleware=[Middleware(BaseHTTPMiddleware, dispatch=bearer)]
    )
    return application


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state", required=True)
    parser.add_argument("--token")
    parser.add_argument("--version", default="1.0.0")
    parser.add_argument("--slow", type=float, default=3.0)
    parser.add_argument("--binding", default="JSONRPC", choices=["JSONRPC", "HTTP+JSON"])
    args = parser.parse_args()
    os.makedirs(args.state, exist_ok=True)
    application = app(
        args.port,
        args.state,
        token=args.token,
        version=args.version,
        slow=args.slow,
        binding=args.binding,
    )
    uvicorn.run(application, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
