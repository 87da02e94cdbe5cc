"""Real MCP servers for the MCP client's tests: `mcp-server-time` from PyPI (the dev extras
install it next to Bosun) and `fault_server.py`, an SDK server that misbehaves on purpose.
Both run as subprocesses over stdio (or Streamable HTTP); nothing of MCP is mocked."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
FAULT_SERVER = HERE / "fault_server.py"


def time_server_command() -> str:
    """`mcp-server-time`, on PATH or in the virtualenv running the tests."""
    found = shutil.which("mcp-server-time") or shutil.which(
        "mcp-server-time", path=os.path.dirname(sys.executable)
    )
    if found is None:
        pytest.skip("mcp-server-time is not installed: pip install -e '.[dev]'")
    return found


def fault_dir_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The fault server's state folder, passed to it through its `env` allow-list."""
    folder = tmp_path / "fault"
    folder.mkdir()
    monkeypatch.setenv("FAULT_DIR", str(folder))
    return folder


def write_agent(folder: Path, body: str, *, name: str = "agent.yaml") -> str:
    path = folder / name
    path.write_text(textwrap.dedent(body))
    return str(path)


def fault_entry(extra: str = "", *, server: str = "", indent: int = 2) -> str:
    """A `tools:` entry for the fault server over stdio (YAML, at `indent` spaces): `extra`
    lines of the entry, `server` lines of its `mcp:` mapping."""
    lines = [
        "- mcp:",
        "    name: fault",
        f"    command: {sys.executable}",
        f"    args: [{FAULT_SERVER}]",
        "    env: [FAULT_DIR, FAULT_TOKEN]",
        "    connect_timeout: 60",
        *("    " + line for line in textwrap.dedent(server).strip("\n").splitlines()),
        *("  " + line for line in textwrap.dedent(extra).strip("\n").splitlines()),
    ]
    return "\n".join(" " * indent + line for line in lines)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class HttpFaultServer:
    """The fault server over Streamable HTTP, as a subprocess that can be stopped and
    started again on the same port."""

    def __init__(self, env: dict[str, str]):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(FAULT_SERVER), "--http", str(self.port)],
            env={**os.environ, **self.env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        raise RuntimeError("the HTTP fault server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
