"""A real `bosun mcp proxy` (a subprocess, stdio or HTTP) in front of real upstream servers:
`mcp-server-time` from PyPI and `ledger_server.py` (the SDK's MCPServer, with a write and an
irreversible tool); the real `bosun` CLI in other processes for approvals, kills and runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LEDGER_SERVER = Path(__file__).with_name("ledger_server.py")


def env(**extra: str) -> dict[str, str]:
    found = dict(os.environ)
    found["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), found.get("PYTHONPATH", "")])
    found.update(extra)
    return found


def bosun(*args: str, **extra_env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bosun", *args],
        env=env(**extra_env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def time_server() -> str:
    found = shutil.which("mcp-server-time") or shutil.which(
        "mcp-server-time", path=os.path.dirname(sys.executable)
    )
    if found is None:
        pytest.skip("mcp-server-time is not installed: pip install -e '.[dev]'")
    return found


def write_proxy(
    folder: Path,
    db: str,
    *,
    approval_timeout: float = 60,
    idle_timeout: float = 600,
    extra: str = "",
) -> Path:
    """A proxy file: the time server (read) and the ledger (its write needs approval, a
    wire to `mallory` is denied), the ledger file in `folder`."""
    path = folder / "proxy.yaml"
    body = f"""\
        name: desk
        servers:
          - mcp: {{name: time, command: {time_server()}, args: ["--local-timezone", "UTC"]}}
            effects: {{"*": read}}
          - mcp:
              name: ledger
              command: {sys.executable}
              args: [{LEDGER_SERVER}]
              env: [LEDGER]
            prefix: ledger_
            trusted: true                # its annotations count: balance reads, record writes
        policy:
          name: desk-policy
          rules:
            - name: no-wires-to-mallory
              tools: [ledger_wire]
              when: args.to == "mallory"
              effect: deny
              reason: Mallory is not a payee.
            - name: wires-need-a-person
              tools: [ledger_wire]
              effect: require_approval
              approver_role: approver
              reason: Every wire is looked at by a person.
        approval_timeout: {approval_timeout}
        idle_timeout: {idle_timeout}
        db: {json.dumps(db)}
    """
    path.write_text(textwrap.dedent(body) + textwrap.dedent(extra))
    return path


def ledger_env(folder: Path) -> dict[str, str]:
    return {"LEDGER": str(folder / "ledger.txt")}


def ledger(folder: Path) -> list[str]:
    path = folder / "ledger.txt"
    return path.read_text().splitlines() if path.exists() else []


def pending_approvals(db: str) -> list[dict]:
    done = bosun("approvals", "--db", db, "--json")
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    return found if isinstance(found, list) else found.get("approvals", [])


def runs(db: str, *args: str) -> list[dict]:
    done = bosun("runs", "--db", db, "--json", *args)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    return found if isinstance(found, list) else found.get("runs", [])


async def tenant_runs(db: str, tenant: str) -> list:
    """The tenant's runs, read from the store (the CLI's listing does not show tenants)."""
    from bosun.store import open_store

    store = open_store(db)
    await store.open()
    try:
        return await store.list_runs(tenant=tenant)
    finally:
        await store.close()
