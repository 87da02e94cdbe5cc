"""OAuth for Streamable HTTP MCP servers (`auth: {oauth: ...}`), against a real server
behind OAuth (`oauth_server.py`: the SDK's resource-server side and a small authorization
server), and the errors an operator sees when a server refuses the entry's credentials."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from mcp_servers import HttpFaultServer, free_port, write_agent

from bosun import Runtime, SpecError, load_agent
from bosun.journal.events import ToolFailed, ToolFinished

pytestmark = pytest.mark.slow
HERE = Path(__file__).resolve().parent
CLIENT_ID, CLIENT_SECRET = "bosun-worker", "client-secret-for-the-test"


class OAuthServer:
    def __init__(self, folder: Path, port: int | None = None, **env: str):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self.log = folder / "oauth.jsonl"
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "oauth_server.py"), str(self.port)],
            env={
                **os.environ,
                "OAUTH_CLIENT_ID": CLIENT_ID,
                "OAUTH_CLIENT_SECRET": CLIENT_SECRET,
                "OAUTH_LOG": str(self.log),
                **env,
            },
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("the OAuth test server did not start")

    def requests(self) -> list[dict]:
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        return [json.loads(line) for line in lines]

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def oauth_server(tmp_path: Path) -> Iterator[OAuthServer]:
    server = OAuthServer(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def client_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKETS_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("TICKETS_CLIENT_SECRET", CLIENT_SECRET)


def agent_file(folder: Path, url: str, oauth: str) -> str:
    return write_agent(
        folder,
        f"""
name: tickets
tools:
  - mcp:
      name: tickets
      url: {url}
      auth:
        oauth:
{oauth}
    effects: {{"*": read}}
model:
  provider: scripted
  turns:
    - tool_calls: [{{name: whoami, arguments: {{}}}}]
    - content: done
""",
    )


def client_credentials(server: OAuthServer) -> str:
    return f"""\
          client_id_env: TICKETS_CLIENT_ID
          client_secret_env: TICKETS_CLIENT_SECRET
          issuer: http://127.0.0.1:{server.port}
          scopes: [admin]"""


async def test_client_credentials_token_is_obtained_used_and_never_journaled_or_logged(
    oauth_server, client_env, sqlite_path, tmp_path, caplog
):
    caplog.set_level(logging.DEBUG)  # every logger, the SDK's and httpx's included
    agent = load_agent(agent_file(tmp_path, oauth_server.url, client_credentials(oauth_server)))
    async with Runtime(sqlite_path) as rt:
        result = await rt.run(agent, "who am I?")
        events = await rt.events(result.run_id)
        audit = await rt.store.audit_records()
    assert result.status == "succeeded", result.reason
    [finished] = [e for _, e in events if isinstance(e, ToolFinished)]
    # The scope the server asked for (`tools`, from its 401) and the entry's own (`admin`).
    assert finished.result == {"result": "admin tools"}
    asked = [r for r in oauth_server.requests() if "grant" in r]
    # One token for the process: loading the agent got it, the worker's connection reused it.
    assert [(r["grant"], r["client_auth"]) for r in asked] == [("client_credentials", "basic")]
    assert set(asked[0]["scope"].split()) == {"tools", "admin"}
    [issued] = [r["issued"] for r in oauth_server.requests() if "issued" in r]
    written = json.dumps([repr(e) for _, e in events] + [repr(a) for a in audit])
    written += orjson.dumps(agent.snapshot()).decode()
    for secret in (issued, CLIENT_SECRET):
        assert secret not in written
        assert secret not in caplog.text
    assert "TICKETS_CLIENT_SECRET" in written  # the snapshot names the variable, only


async def test_authorization_code_is_completed_by_the_worker_with_a_preregistered_client(
    oauth_server, client_env, sqlite_path, tmp_path, caplog
):
    caplog.set_level(logging.DEBUG)
    oauth = """\
          grant: authorization_code
          client_id_env: TICKETS_CLIENT_ID
          client_secret_env: TICKETS_CLIENT_SECRET"""
    agent = load_agent(agent_file(tmp_path, oauth_server.url, oauth))
    async with Runtime(sqlite_path) as rt:
        result = await rt.run(agent, "who am I?")
        events = await rt.events(result.run_id)
    assert result.status == "succeeded", result.reason
    [finished] = [e for _, e in events if isinstance(e, ToolFinished)]
    assert finished.result == {"result": "tools"}
    grants = [r["grant"] for r in oauth_server.requests() if "grant" in r]
    assert grants == ["authorization_code"]
    [issued] = [r["issued"] for r in oauth_server.requests() if "issued" in r]
    assert issued not in caplog.text and CLIENT_SECRET not in caplog.text


def test_an_authorization_server_that_wants_a_person_is_a_clear_error(client_env, tmp_path):
    server = OAuthServer(tmp_path, OAUTH_LOGIN_PAGE="1")
    try:
        oauth = """\
          grant: authorization_code
          client_id_env: TICKETS_CLIENT_ID"""
        with pytest.raises(SpecError) as refused:
            load_agent(agent_file(tmp_path, server.url, oauth))
    finally:
        server.stop()
    message = str(refused.value)
    assert "MCP server tickets" in message
    assert "answered 200 OK (a login page?)" in message
    assert "cannot log a person in" in message and "grant: client_credentials" in message
    assert "the entry's auth: auth: oauth authorization_code, client_id_env TICKETS_CLIENT_ID" in (
        message
    )


def test_a_wrong_client_secret_names_the_token_refusal_and_the_variables(
    oauth_server, tmp_path, monkeypatch
):
    monkeypatch.setenv("TICKETS_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("TICKETS_CLIENT_SECRET", "not-the-secret")
    with pytest.raises(SpecError) as refused:
        load_agent(agent_file(tmp_path, oauth_server.url, client_credentials(oauth_server)))
    message = str(refused.value)
    assert "OAuth did not give the worker a token" in message
    assert "invalid_client" in message
    assert "client_secret_env TICKETS_CLIENT_SECRET" in message
    assert "not-the-secret" not in message


def test_a_401_names_the_status_and_the_entrys_auth_settings(tmp_path, fault_dir, monkeypatch):
    monkeypatch.setenv("FAULT_TOKEN", "the-right-token")
    monkeypatch.setenv("WRONG_TOKEN", "a-wrong-token")
    server = OAuthServer(tmp_path)  # requires a token it issued: any other is refused
    try:
        for auth, says in (
            ("bearer_token_env: WRONG_TOKEN", "the entry's auth: bearer_token_env WRONG_TOKEN"),
            ("", "the entry's auth: no auth (add `bearer_token_env` or `auth: {oauth: ...}`"),
        ):
            body = f"""
name: remote
tools:
  - mcp:
      name: remote
      url: {server.url}
      {auth}
"""
            with pytest.raises(SpecError) as refused:
                load_agent(write_agent(tmp_path, body))
            message = str(refused.value)
            assert "MCP server remote answered HTTP 401 Unauthorized" in message
            assert 'WWW-Authenticate: Bearer error="invalid_token"' in message
            assert says in message
            assert "a-wrong-token" not in message
            assert "Server returned an error response" not in message
    finally:
        server.stop()


async def test_a_401_when_a_worker_connects_is_the_tool_error_the_model_sees(
    sqlite_path, tmp_path, fault_dir, monkeypatch
):
    """The agent loaded against a server that took its token; by the time the run calls,
    the server at that address refuses it (a rotated token, a server now behind OAuth)."""
    monkeypatch.setenv("FAULT_TOKEN", "token-that-will-be-refused")
    server = HttpFaultServer({"FAULT_DIR": str(fault_dir)})
    server.start()
    try:
        body = f"""
name: remote
tools:
  - mcp:
      name: remote
      url: {server.url}
      bearer_token_env: FAULT_TOKEN
      connect_attempts: 1
    allow: [echo]
    effects: {{echo: read}}
model:
  provider: scripted
  turns:
    - tool_calls: [{{name: echo, arguments: {{text: hi}}}}]
    - content: done
"""
        agent = load_agent(write_agent(tmp_path, body))
    finally:
        server.stop()
    guarded = OAuthServer(tmp_path, port=server.port)
    try:
        async with Runtime(sqlite_path) as rt:
            result = await rt.run(agent, "echo")
            events = await rt.events(result.run_id)
    finally:
        guarded.stop()
    [failed] = [e for _, e in events if isinstance(e, ToolFailed)]
    assert failed.error_type == "source_unavailable"
    assert "MCP server remote answered HTTP 401 Unauthorized" in failed.message
    assert "the entry's auth: bearer_token_env FAULT_TOKEN" in failed.message
    assert "token-that-will-be-refused" not in failed.message


def test_oauth_settings_are_validated_on_their_line(tmp_path, monkeypatch):
    cases = [
        ("grant: client_credentials", "needs `client_id_env` and `client_secret_env`"),
        (
            "client_secret_env: ONLY_SECRET\n          grant: authorization_code",
            "needs `client_id_env`",
        ),
        ("grant: password", "auth.oauth.grant"),
        ('grant: authorization_code\n          scopes: ["read write"]', "is not one scope"),
    ]
    for oauth, says in cases:
        with pytest.raises(SpecError) as refused:
            load_agent(agent_file(tmp_path, "https://mcp.example/mcp", f"          {oauth}"))
        message = str(refused.value)
        assert says in message, message
        assert "line " in message
    body = """
name: both
tools:
  - mcp:
      url: https://mcp.example/mcp
      bearer_token_env: T
      auth: {oauth: {client_id_env: A, client_secret_env: B}}
"""
    with pytest.raises(SpecError, match="not both"):
        load_agent(write_agent(tmp_path, body))


def test_credentials_go_only_to_the_issuer_the_entry_names(oauth_server, client_env, tmp_path):
    for grant in ("client_credentials", "authorization_code"):
        oauth = f"""\
          grant: {grant}
          client_id_env: TICKETS_CLIENT_ID
          client_secret_env: TICKETS_CLIENT_SECRET
          issuer: https://auth.example.com"""
        with pytest.raises(SpecError) as refused:
            load_agent(agent_file(tmp_path, oauth_server.url, oauth))
        message = str(refused.value)
        assert "not the entry's issuer https://auth.example.com" in message, message
        assert "credentials were not sent" in message
    assert not [r for r in oauth_server.requests() if "grant" in r]  # no token request
