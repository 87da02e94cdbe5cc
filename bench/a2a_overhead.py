"""A trivial A2A round trip through Bosun's server vs the official SDK's server with its
in-memory task store, on the same agent logic (answer "Hello" and complete).

    .venv/bin/python bench/a2a_overhead.py [--calls 300] [--tasks 1000] [--clients 200] [--json]

Two servers, each its own process on 127.0.0.1, both JSON-RPC over HTTP (uvicorn):

- **sdk**: `DefaultRequestHandlerV2` + `InMemoryTaskStore` + an `AgentExecutor` that
  completes the task with "Hello" (this file run with `--serve-sdk PORT`): the floor;
- **bosun**: `bosun serve --agent` of a scripted agent answering "Hello" (one model turn),
  on SQLite (WAL): each task is a run: created, claimed by the in-process worker, one
  journaled step, finished; SendMessage blocks until the run ends.

Latency: `--calls` sequential blocking SendMessage calls with the SDK's client after a
warm-up, median and p99 in milliseconds. Throughput: `--tasks` tasks sent by `--clients`
concurrent clients (one shared httpx pool of `--clients` connections), tasks per second; a
send that fails on a kept-alive connection the server had closed is sent once more and
counted (`retried`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
AGENT_YAML = """\
name: hello
version: "1"
a2a: {public: true}
model:
  provider: scripted
  turns: [{content: Hello}]
"""


def serve_sdk(port: int) -> None:
    import uvicorn
    from a2a.helpers.proto_helpers import new_task
    from a2a.server.agent_execution import AgentExecutor
    from a2a.server.request_handlers import DefaultRequestHandlerV2
    from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
    from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
    from a2a.types import a2a_pb2 as pb
    from starlette.applications import Starlette

    class Hello(AgentExecutor):
        async def execute(self, context, event_queue) -> None:
            if context.current_task is None:  # a new task: announce it first, as v2 wants
                await event_queue.enqueue_event(
                    new_task(context.task_id, context.context_id, pb.TaskState.TASK_STATE_SUBMITTED,
                             history=[context.message])
                )  # fmt: skip
            updater = TaskUpdater(event_queue, context.task_id, context.context_id)
            await updater.complete(updater.new_agent_message([pb.Part(text="Hello")]))

        async def cancel(self, context, event_queue) -> None:
            await TaskUpdater(event_queue, context.task_id, context.context_id).cancel()

    url = f"http://127.0.0.1:{port}/"
    card = pb.AgentCard(
        name="hello",
        description="says hello",
        version="1",
        supported_interfaces=[
            pb.AgentInterface(url=url, protocol_binding="JSONRPC", protocol_version="1.0")
        ],
        capabilities=pb.AgentCapabilities(streaming=True),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[pb.AgentSkill(id="hello", name="hello", description="says hello", tags=["bench"])],
    )
    handler = DefaultRequestHandlerV2(
        agent_executor=Hello(), task_store=InMemoryTaskStore(), agent_card=card
    )
    app = Starlette(
        routes=[*create_agent_card_routes(card), *create_jsonrpc_routes(handler, rpc_url="/")]
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url + "/.well-known/agent-card.json", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server at {url} did not start")


async def client_for(card_url: str, http: httpx.AsyncClient):
    from a2a.client import ClientConfig, create_client

    return await create_client(
        card_url, client_config=ClientConfig(streaming=False, httpx_client=http)
    )


def request():
    from a2a.types import a2a_pb2 as pb

    return pb.SendMessageRequest(
        message=pb.Message(
            role=pb.Role.ROLE_USER, message_id=str(uuid.uuid4()), parts=[pb.Part(text="hi")]
        )
    )


async def one(client) -> None:
    async for event in client.send_message(request()):
        assert event.task.status.state == 3, event  # TASK_STATE_COMPLETED


async def latency(card_url: str, calls: int, warmup: int) -> list[float]:
    async with httpx.AsyncClient(timeout=60) as http:
        client = await client_for(card_url, http)
        for _ in range(warmup):
            await one(client)
        samples = []
        for _ in range(calls):
            t0 = time.perf_counter()
            await one(client)
            samples.append((time.perf_counter() - t0) * 1000)
        return samples


async def throughput(card_url: str, tasks: int, clients: int) -> tuple[float, int]:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        client = await client_for(card_url, http)
        queue = iter(range(tasks))

        retried = 0

        async def worker() -> None:
            nonlocal retried
            from a2a.client import A2AClientError

            for _ in queue:
                try:
                    await one(client)
                except A2AClientError:  # a kept-alive connection the server closed: once more
                    retried += 1
                    await one(client)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return tasks / (time.perf_counter() - t0), retried


def p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[98]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--serve-sdk", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_sdk is not None:
        serve_sdk(args.serve_sdk)
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="bosun-a2a-bench-"))
    (tmp / "hello.yaml").write_text(AGENT_YAML)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    sdk_port, bosun_port = free_port(), free_port()
    procs = {
        "sdk": subprocess.Popen([sys.executable, __file__, "--serve-sdk", str(sdk_port)], env=env),
        "bosun": subprocess.Popen(
            [sys.executable, "-m", "bosun", "serve", "--agent", str(tmp / "hello.yaml"),
             "--port", str(bosun_port), "--db", str(tmp / "bench.db")],
            env=env, stdout=subprocess.DEVNULL,
        ),
    }  # fmt: skip
    urls = {"sdk": f"http://127.0.0.1:{sdk_port}", "bosun": f"http://127.0.0.1:{bosun_port}"}
    cards = {"sdk": urls["sdk"], "bosun": urls["bosun"]}
    rows = {}
    try:
        for name, proc in procs.items():
            wait_ready(urls[name], proc)
        for name in ("sdk", "bosun"):
            samples = asyncio.run(latency(cards[name], args.calls, args.warmup))
            rate, retried = asyncio.run(throughput(cards[name], args.tasks, args.clients))
            rows[name] = {
                "median_ms": statistics.median(samples),
                "p99_ms": p99(samples),
                "tasks_per_s": rate,
                "retried": retried,
            }
    finally:
        for proc in procs.values():
            proc.terminate()
            proc.wait(10)
    sdk, bosun = rows["sdk"], rows["bosun"]
    ratios = {
        "median_x": bosun["median_ms"] / sdk["median_ms"],
        "p99_x": bosun["p99_ms"] / sdk["p99_ms"],
        "throughput_x": bosun["tasks_per_s"] / sdk["tasks_per_s"],
    }
    if args.json:
        print(json.dumps({"rows": rows, "ratios": ratios, "args": vars(args)}, indent=2))
        return 0
    print(
        f"A2A SendMessage (blocking), {args.calls} calls; {args.tasks} tasks by {args.clients} clients"
    )
    print(f"{'server':<8}{'median ms':>12}{'p99 ms':>10}{'tasks/s':>10}{'retried':>9}")
    for name, row in rows.items():
        print(
            f"{name:<8}{row['median_ms']:>12.2f}{row['p99_ms']:>10.2f}{row['tasks_per_s']:>10.0f}"
            f"{row['retried']:>9}"
        )
    print(
        f"bosun / sdk: median x{ratios['median_x']:.1f}, p99 x{ratios['p99_x']:.1f},"
        f" throughput x{ratios['throughput_x']:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
