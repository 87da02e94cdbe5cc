"""Start a real `bosun serve` (uvicorn on 127.0.0.1, a free port) in a thread, and call it."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bosun.server.serve import build_server
from bosun.server.state import Settings

ROOT = Path(__file__).resolve().parents[2]
SUPPORT = str(ROOT / "examples" / "support" / "agent.yaml")
TEST_AGENTS = str(Path(__file__).with_name("agents.py"))
AGENTS = [SUPPORT, *(f"{TEST_AGENTS}:{name}" for name in ("quick", "slow", "steady"))]


@dataclass
class Running:
    url: str
    admin_key: str
    settings: Settings
    app: object

    def client(self, key: str | None = None, **kw) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=20, **kw)

    def admin(self) -> httpx.Client:
        return self.client(self.admin_key)

    def key(self, tenant: str, role: str, name: str | None = None, approves=()) -> str:
        body = {"tenant": tenant, "role": role, "name": name or role, "approves": list(approves)}
        with self.admin() as c:
            r = c.post("/api/keys", json=body)
            assert r.status_code == 201, r.text
            return r.json()["key"]


def start_server(db: str, **overrides) -> tuple[Running, callable]:
    settings = Settings(db=db, agents=list(AGENTS), auth_failures_per_minute=10_000)
    for k, v in overrides.items():
        setattr(settings, k, v)
    app, server = build_server(settings, "127.0.0.1", 0)
    thread = threading.Thread(target=server.run, name="bosun-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    state = app.state.bosun

    def stop() -> None:
        server.should_exit = True
        thread.join(30)
        assert not thread.is_alive(), "the test server did not stop"

    return Running(f"http://127.0.0.1:{port}", state.first_admin_key or "", settings, app), stop


def log_in(client: httpx.Client, key: str, **form: str) -> httpx.Response:
    """Log `client` in to the console as a browser does: the login page's token (in its
    form and in a cookie), then the post. Returns the post's response (303 when it worked)."""
    page = client.get("/login")
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    token = found.group(1) if found else ""
    return client.post("/login", data={"key": key, "csrf": token, **form})


def wait_for(client: httpx.Client, run_id: str, statuses: set[str], timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        run = client.get(f"/api/runs/{run_id}").json()
        if run["status"] in statuses:
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} is {run['status']}, not {statuses}")
        time.sleep(0.05)


def submit(client: httpx.Client, agent: str = "quick", text: str = "hi", **body) -> str:
    r = client.post("/api/runs", json={"agent": agent, "input": text, **body})
    assert r.status_code == 201, r.text
    return r.json()["run_id"]
