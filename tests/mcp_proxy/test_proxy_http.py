"""`bosun mcp proxy --http` with Bosun API keys, called with the SDK's own `mcp.Client`
over Streamable HTTP: the caller's key is the identity (tenant, user), the same Host/Origin
and key checks as `bosun mcp serve`, and each call governed and journaled."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import httpx
import httpx2
import psycopg
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from proxy_helpers import (
    bosun,
    env,
    ledger,
    ledger_env,
    pending_approvals,
    runs,
    tenant_runs,
    write_proxy,
)

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proxied:
    def __init__(self, url: str, db: str, folder):
        self.url, self.db, self.folder = url, db, folder

    def key(self, role: str, tenant: str = "default") -> str:
        made = bosun("keys", "create", "--db", self.db, "--tenant", tenant, "--role", role,
                     "--name", f"{role}-{tenant}", "--json")  # fmt: skip
        assert made.returncode == 0, made.stderr
        return json.loads(made.stdout)["key"]

    def client(self, key: str, mode: str = "auto") -> tuple[httpx2.AsyncClient, Client]:
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=60)
        return http, Client(streamable_http_client(self.url, http_client=http), mode=mode)


PG_URL = os.environ.get("BOSUN_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def store_url(request, tmp_path_factory) -> Iterator[str]:
    """A SQLite file, or a fresh PostgreSQL schema (skipped when it is not reachable)."""
    if request.param == "sqlite":
        yield str(tmp_path_factory.mktemp("proxy-db") / "bosun.db")
        return
    schema = "bosun_proxy_" + uuid.uuid4().hex[:12]
    try:
        with psycopg.connect(PG_URL, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {exc}")
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(scope="module")
def proxied(tmp_path_factory, store_url) -> Iterator[Proxied]:
    folder = tmp_path_factory.mktemp("proxy-http")
    db = store_url
    config = write_proxy(folder, db)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bosun", "mcp", "proxy", "--config", str(config),
         "--http", str(port)],
        env=env(**ledger_env(folder)), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/mcp"
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"bosun mcp proxy exited: {proc.stderr.read()}")
        try:
            httpx.get(url, timeout=1)
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline, "bosun mcp proxy did not start"
            time.sleep(0.1)
    try:
        yield Proxied(url, db, folder)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


async def test_calls_with_a_key_are_one_run_of_the_keys_tenant_with_its_calls(proxied):
    http, client = proxied.client(proxied.key("operator", tenant="acme"))
    async with http, client:
        first = await client.call_tool("get_current_time", {"timezone": "Asia/Tokyo"})
        second = await client.call_tool("ledger_record", {"note": "from-http"})
    assert first.structured_content["timezone"] == "Asia/Tokyo"
    assert second.structured_content == {"result": "recorded from-http"}
    [run] = await tenant_runs(proxied.db, "acme")
    assert run.agent == "desk" and run.status == "running"  # until it idles out
    assert run.user == "operator-acme"  # the key's name
    assert run.id in {r["run_id"] for r in runs(proxied.db)}
    shown = bosun("show", "--db", proxied.db, "--calls", run.id)
    assert "get_current_time" in shown.stdout and "ledger_record" in shown.stdout
    assert "note from-http" in ledger(proxied.folder)


async def test_each_2025_era_client_session_is_a_run_of_its_own(proxied):
    key = proxied.key("operator", tenant="gamma")
    for note in ("one", "two"):  # two sessions (the `initialize` handshake, Mcp-Session-Id)
        http, client = proxied.client(key, mode="legacy")
        async with http, client:
            done = await client.call_tool("ledger_record", {"note": f"legacy-{note}"})
            assert not done.is_error, done.content
    found = await tenant_runs(proxied.db, "gamma")
    assert len(found) == 2
    assert all(r.session.startswith("http:") for r in found)
    assert found[0].session != found[1].session


async def test_an_approval_gated_call_over_http_waits_for_a_person(proxied):
    http, client = proxied.client(proxied.key("operator", tenant="beta"))
    async with http, client:
        call = asyncio.create_task(client.call_tool("ledger_wire", {"amount": 7, "to": "carol"}))
        pending = []
        for _ in range(300):
            pending = [
                a for a in await asyncio.to_thread(pending_approvals, proxied.db)
                if a.get("tenant", "beta") == "beta"
            ]  # fmt: skip
            if pending:
                break
            await asyncio.sleep(0.1)
        [approval] = pending
        assert not call.done()
        approval_id = approval.get("approval_id") or approval.get("id")
        denied = await asyncio.to_thread(
            bosun, "deny", "--db", proxied.db, approval_id, "--reason", "not today", "--by", "sam"
        )
        assert denied.returncode == 0, denied.stderr
        result = await asyncio.wait_for(call, 60)
    assert result.is_error and "not today" in result.content[0].text
    assert not any("carol" in line for line in ledger(proxied.folder))


async def test_a_viewer_key_may_list_but_not_call(proxied):
    http, client = proxied.client(proxied.key("viewer"))
    async with http, client:
        names = {t.name for t in (await client.list_tools()).tools}
        refused = await client.call_tool("get_current_time", {"timezone": "UTC"})
    assert "get_current_time" in names
    assert refused.is_error and "operator" in refused.content[0].text


def test_no_key_is_401_and_a_foreign_host_is_421(proxied):
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"Accept": "application/json, text/event-stream"}
    assert httpx.post(proxied.url, json=body, headers=headers).status_code == 401
    foreign = httpx.post(proxied.url, json=body, headers={**headers, "Host": "evil.example"})
    assert foreign.status_code == 421
