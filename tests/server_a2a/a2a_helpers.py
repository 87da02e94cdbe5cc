"""A real `bosun serve` (uvicorn on 127.0.0.1, a free port) in a thread, publishing the test
agents over A2A, and the official `a2a-sdk` client pointed at it."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from a2a.client import ClientConfig, create_client
from a2a.types import a2a_pb2 as pb

from bosun.server.serve import build_server
from bosun.server.state import Settings

AGENTS_FILE = str(Path(__file__).with_name("a2a_agents.py"))
AGENTS = [
    f"{AGENTS_FILE}:{name}" for name in ("echo", "open_echo", "asker", "payer", "slow", "waiter")
]


@dataclass
class Served:
    url: str
    admin_key: str
    app: object

    def key(self, tenant: str, role: str) -> str:
        with httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.admin_key}"}
        ) as c:
            r = c.post(
                "/api/keys", json={"tenant": tenant, "role": role, "name": f"{tenant}-{role}"}
            )
            assert r.status_code == 201, r.text
            return r.json()["key"]

    async def client(
        self, agent: str, key: str | None, *, streaming: bool = False, binding: str = "JSONRPC"
    ):
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        http = httpx.AsyncClient(headers=headers, timeout=30)
        config = ClientConfig(
            streaming=streaming, httpx_client=http, supported_protocol_bindings=[binding]
        )
        return await create_client(f"{self.url}/a2a/{agent}", client_config=config)


def start(db: str, admin_key: str = "", **overrides) -> tuple[Served, callable]:
    settings = Settings(
        db=db, agents=list(AGENTS), auth_failures_per_minute=10_000, poll_interval=0.05
    )
    for name, value in overrides.items():
        setattr(settings, name, value)
    # The agent cards name the server's URL, so the port is chosen before it starts.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app, server = build_server(settings, "127.0.0.1", port)
    thread = threading.Thread(target=server.run, name="bosun-a2a-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)

    def stop() -> None:
        server.should_exit = True
        thread.join(30)
        assert not thread.is_alive(), "the test server did not stop"

    key = app.state.bosun.first_admin_key or admin_key
    return Served(f"http://127.0.0.1:{port}", key, app), stop


def text_message(
    text: str, *, task_id: str = "", context_id: str = "", message_id: str | None = None
) -> pb.SendMessageRequest:
    import uuid

    return pb.SendMessageRequest(
        message=pb.Message(
            role=pb.Role.ROLE_USER,
            message_id=message_id or str(uuid.uuid4()),
            task_id=task_id,
            context_id=context_id,
            parts=[pb.Part(text=text)],
        )
    )


async def send(client, request: pb.SendMessageRequest) -> list[pb.StreamResponse]:
    return [event async for event in client.send_message(request)]
