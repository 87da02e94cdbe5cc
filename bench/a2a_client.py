"""A remote A2A agent's call through Bosun against the bare a2a-sdk client.

    .venv/bin/python bench/a2a_client.py [--calls 30] [--runs 20]

One reference A2A agent (the a2a-sdk's server classes, `tests/tools/a2a/a2a_reference_agent.py`
in a process of its own on 127.0.0.1, skill `echo`: completes at once) is called three ways:

- **sdk**: the bare SDK client, a blocking `SendMessage` (the server answers when the task
  has completed): one round trip, the floor;
- **bosun source**: Bosun's `a2a` source as the engine and the watcher use it: a
  non-blocking send (`returnImmediately`: the task id comes back at once, so it can be
  journaled before the run parks), then `GetTask` until the task completed;
- **bosun run**: a whole durable run with one such call (SQLite): the model turn, policy,
  the send, `WaitRequested`, the park, the watcher's lease and poll, the settle, the wake,
  the result and the answer; with the worker polling every 50 ms (its watcher as often).

Per call: wall median and p99 in milliseconds, and the ratio of medians to the sdk row.
The bosun-run row is dominated by polling (worker and watcher intervals), by design: a
parked run holds no worker and is woken by the store, not by a live connection.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "..", "tests", "tools", "a2a", "a2a_reference_agent.py")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def sdk_calls(url: str, calls: int) -> list[float]:
    import httpx
    from a2a.client import ClientConfig, ClientFactory
    from a2a.client.card_resolver import parse_agent_card
    from a2a.types.a2a_pb2 import Message, Part, Role, SendMessageRequest

    async with httpx.AsyncClient() as http:
        card = parse_agent_card((await http.get(url + "/.well-known/agent-card.json")).json())
        client = ClientFactory(ClientConfig(streaming=False, httpx_client=http)).create(card)
        samples = []
        for i in range(calls):
            message = Message(message_id=f"sdk-{i}", role=Role.ROLE_USER, parts=[Part(text="hi")])
            message.metadata.update({"dev.bosun/skill": "echo"})
            started = time.perf_counter()
            async for answer in client.send_message(SendMessageRequest(message=message)):
                assert answer.task.status.state == 3, answer  # completed
                break
            samples.append(time.perf_counter() - started)
    return samples


async def source_calls(url: str, calls: int) -> list[float]:
    from bosun.spec.a2a_remote import A2aAgent, source_spec
    from bosun.spec.tool import ToolContext
    from bosun.spec.wait import Wait
    from bosun.tools.a2a.source import A2aSource
    from bosun.tools.sources import Call

    source = A2aSource(source_spec(A2aAgent(card=url), False))
    await source.open()
    samples = []
    try:
        for i in range(calls):
            call = Call(ToolContext("bench", f"c{i}", f"src-{i}", 0), 30.0, None)  # type: ignore[arg-type]
            started = time.perf_counter()
            outcome = await source.invoke("echo", {"message": "hi"}, call)
            if isinstance(outcome, Wait):
                task_id = outcome.key.rsplit(":", 1)[1]
                while source.settled(await source.task(task_id)) is None:
                    await asyncio.sleep(0.001)
            samples.append(time.perf_counter() - started)
    finally:
        await source.close()
    return samples


async def run_calls(url: str, runs: int, folder: str) -> list[float]:
    from bosun import Agent, Runtime
    from bosun.engine.worker import Worker
    from bosun.tools.a2a import a2a_tools

    agent = Agent(
        name="bench-caller",
        model={
            "provider": "scripted",
            "turns": [
                {"tool_calls": [{"name": "echo", "arguments": {"message": "hi"}}]},
                {"content": "done"},
            ],
        },
        tools=a2a_tools({"card": url, "poll_interval": 0.05}),
    )
    samples = []
    async with Runtime(os.path.join(folder, "bench.db")) as rt:
        stop = asyncio.Event()
        worker = asyncio.create_task(Worker(rt, poll_interval=0.05).serve(stop))
        for _ in range(runs):
            started = time.perf_counter()
            run_id = await rt.submit(agent, "go")
            while (await rt.get_run(run_id)).status != "succeeded":
                await asyncio.sleep(0.005)
            samples.append(time.perf_counter() - started)
        stop.set()
        await worker
    return samples


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    port = _port()
    folder = tempfile.mkdtemp(prefix="bosun-a2a-bench-")
    proc = subprocess.Popen(
        [sys.executable, SERVER, "--port", str(port), "--state", folder],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        import httpx

        for _ in range(300):
            try:
                if httpx.get(url + "/.well-known/agent-card.json", timeout=1).is_success:
                    break
            except httpx.HTTPError:
                await asyncio.sleep(0.1)
        await sdk_calls(url, 3)  # warm up the server
        rows = [
            ("sdk", await sdk_calls(url, args.calls)),
            ("bosun source", await source_calls(url, args.calls)),
            ("bosun run", await run_calls(url, args.runs, folder)),
        ]
    finally:
        proc.kill()
        proc.wait()
    base = statistics.median(rows[0][1])
    print("| way | calls | wall median ms | wall p99 ms | x sdk |")
    print("|---|---|---|---|---|")
    for name, samples in rows:
        median = statistics.median(samples)
        print(
            f"| {name} | {len(samples)} | {median * 1000:.1f} | {_pct(samples, 0.99) * 1000:.1f}"
            f" | {median / base:.2f}x |"
        )


if __name__ == "__main__":
    asyncio.run(main())
