"""Start a real `bosun mcp serve` subprocess (HTTP on a free loopback port) on a SQLite
file, and make keys with the real `bosun keys create`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
AGENTS = Path(__file__).with_name("mcp_serve_agents.py")


def env() -> dict[str, str]:
    found = dict(os.environ)
    found["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), found.get("PYTHONPATH", "")])
    return found


def bosun(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bosun", *args],
        env=env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def agent_args() -> list[str]:
    return [a for name in ("greeter", "refunder") for a in ("--agent", f"{AGENTS}:{name}")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(db: str, *extra: str) -> tuple[subprocess.Popen, str]:
    """`bosun mcp serve --http PORT ...`, once it answers; returns (process, /mcp url)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bosun", "mcp", "serve", "--db", db, "--http", str(port), *extra],
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/mcp"
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"bosun mcp serve exited: {proc.stderr.read()}")
        try:
            httpx.get(url, timeout=1)
            return proc, url
        except httpx.TransportError:
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("bosun mcp serve did not start") from None
            time.sleep(0.1)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@dataclass
class Served:
    url: str
    db: str

    def key(self, role: str, tenant: str = "default") -> str:
        made = bosun(
            "keys", "create", "--db", self.db, "--tenant", tenant, "--role", role,
            "--name", f"{role}-{tenant}", "--json",
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        return json.loads(made.stdout)["key"]
