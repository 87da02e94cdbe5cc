"""The reference A2A server (`a2a_reference_agent.py`, the a2a-sdk's server classes) as a fixture: a
real uvicorn process on 127.0.0.1 that a test can stop and start again on the same port
and state folder, and whose counters say what reached it."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

SERVER = Path(__file__).parent / "a2a_reference_agent.py"
TOKEN = "tok-" + "s3cret-never-journaled"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RefServer:
    def __init__(self, state: Path, **options: object):
        self.port = free_port()
        self.state = state
        self.options = options
        self.log = state / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, **options: object) -> RefServer:
        self.options.update(options)
        args = [sys.executable, str(SERVER), "--port", str(self.port), "--state", str(self.state)]
        for name, value in self.options.items():
            if value is not None:
                args += [f"--{name}", str(value)]
        self.state.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/.well-known/agent-card.json", timeout=1).is_success:
                    return self
            except httpx.HTTPError:
                pass
            assert self.proc.poll() is None, self.log.read_text()
            time.sleep(0.05)
        raise AssertionError(f"reference A2A server did not start:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.proc = None

    def counts(self, name: str = "sends") -> dict[str, int]:
        path = self.state / f"{name}.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def task_state(self, task_id: str) -> str | None:
        path = self.state / "tasks.json"
        tasks = json.loads(path.read_text()) if path.exists() else {}
        return (tasks.get(task_id) or {}).get("status", {}).get("state")
