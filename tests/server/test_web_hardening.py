"""`bosun serve` against a hostile client on 127.0.0.1: what a probe of the server found, and
what stops it now.

- A revoked key (or a console session whose key is revoked, or that logged out) loses its
  open Server-Sent Event streams: at once when revoked by this server, within seconds when
  revoked by another process.
- A request body has a bound (413), and an anonymous request is refused before its body is
  read at all: a 300 MB upload is neither buffered nor waited for.
- The login form cannot be posted from another site; every response carries the security
  headers (CSP, no framing, nosniff, referrer policy, no-store); the console shows only the
  banners it signed itself; `X-Forwarded-For` counts only from configured proxies.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server_helpers import ROOT, Running, log_in, start_server, submit, wait_for

from bosun.errors import BosunError
from bosun.server.app import create_app
from bosun.server.state import Settings
from bosun.store import open_store

MiB = 1024 * 1024


class Stream:
    """An SSE stream read in a thread: the event kinds it received, and whether it ended."""

    def __init__(self, client: httpx.Client, url: str):
        self.client, self.url = client, url
        self.kinds: list[str] = []
        self.status: int | None = None
        self.started = threading.Event()
        self.ended = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            with self.client.stream("GET", self.url) as response:
                self.status = response.status_code
                self.started.set()
                for line in response.iter_lines():
                    if line.startswith("event: "):
                        self.kinds.append(line.removeprefix("event: "))
        except httpx.HTTPError:
            pass
        finally:
            self.started.set()
            self.ended.set()

    def wait_for_events(self, n: int = 1, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while len(self.kinds) < n:
            assert not self.ended.is_set(), f"{self.url} ended early ({self.status})"
            assert time.monotonic() < deadline, f"{self.url}: no events"
            time.sleep(0.02)


def _key_id(key: str) -> str:
    return key.split("_")[1]


def _rss_kib(pid: int | str = "self") -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))


def _audit(db: str) -> list:
    async def read() -> list:
        store = open_store(db)
        await store.open()
        try:
            return [r.entry for r in await store.audit_records()]
        finally:
            await store.close()

    return asyncio.run(read())


# -- 4. revoking a key ends its streams -----------------------------------------------------


@pytest.fixture
def busy_run(server: Running) -> Iterator[tuple[str, str]]:
    """A long run of tenant `revoke` (its operator key), cancelled afterwards."""
    operator = server.key("revoke", "operator", "revoke-operator")
    with server.client(operator) as c:
        run_id = submit(c, "slow", "keep busy")
        wait_for(c, run_id, {"running"})
        yield run_id, operator
        c.post(f"/api/runs/{run_id}/cancel")


def test_revoking_a_key_ends_its_open_streams_at_once(server: Running, busy_run):
    run_id, _ = busy_run
    viewer = server.key("revoke", "viewer", "revoked-soon")
    with server.client(viewer) as c:
        run_stream = Stream(c, f"/api/runs/{run_id}/stream")
        tenant_stream = Stream(c, "/api/stream")
        run_stream.wait_for_events(3)
        tenant_stream.wait_for_events(1)
        with server.admin() as admin:
            assert admin.delete(f"/api/keys/{_key_id(viewer)}").json()["revoked"] is True
        assert run_stream.ended.wait(3) and tenant_stream.ended.wait(3)
        seen = len(run_stream.kinds)
        assert run_stream.status == 200 and "end" not in run_stream.kinds  # cut, not finished
        with c.stream("GET", f"/api/runs/{run_id}/stream") as again:
            assert again.status_code == 401
    assert len(run_stream.kinds) == seen


def test_a_key_revoked_by_another_process_ends_its_streams_within_seconds(
    server: Running, busy_run
):
    run_id, _ = busy_run
    viewer = server.key("revoke", "viewer", "revoked-elsewhere")
    db = server.settings.db
    with server.client(viewer) as c:
        run_stream = Stream(c, f"/api/runs/{run_id}/stream")
        tenant_stream = Stream(c, "/api/stream")
        run_stream.wait_for_events(3)
        tenant_stream.wait_for_events(1)
        revoked = subprocess.run(
            [sys.executable, "-m", "bosun", "keys", "revoke", _key_id(viewer), "--db", db],
            env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert revoked.returncode == 0, revoked.stderr
        # Streams re-check their key every second or two (one store read per key).
        assert run_stream.ended.wait(10) and tenant_stream.ended.wait(10)


def test_a_console_sessions_streams_end_with_its_key_or_its_logout(server: Running, busy_run):
    run_id, _ = busy_run
    for how in ("revoke", "logout"):
        key = server.key("revoke", "viewer", f"console-{how}")
        with server.client(follow_redirects=False) as browser:
            assert log_in(browser, key).status_code == 303
            run_stream = Stream(browser, f"/api/runs/{run_id}/stream")
            tenant_stream = Stream(browser, "/api/stream")
            run_stream.wait_for_events(3)
            tenant_stream.wait_for_events(1)
            if how == "revoke":
                with server.admin() as admin:
                    admin.delete(f"/api/keys/{_key_id(key)}")
            else:
                csrf = re.search(r'name="csrf" value="([^"]+)"', browser.get("/runs").text)
                assert browser.post("/logout", data={"csrf": csrf.group(1)}).status_code == 303
            assert run_stream.ended.wait(3) and tenant_stream.ended.wait(3), how


# -- 5. request bodies: bounded, and not read before authentication ---------------------------


def _raw_request(url: str, head: str, body: bytes = b"", timeout: float = 5) -> str:
    """Send a request's head (and some body) on a plain socket; the response's head."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(head.encode() + b"\r\n")
        if body:
            sock.sendall(body)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer.decode("latin-1")


def _head(method: str, path: str, *headers: str) -> str:
    return "".join(f"{line}\r\n" for line in (f"{method} {path} HTTP/1.1", "Host: x", *headers))


def test_an_unauthenticated_post_is_refused_without_its_body_being_read(server: Running):
    # The head promises 1,000 bytes that never come: only a server that does not wait for
    # the body can answer (before, FastAPI read the body before checking anything).
    promised = ("Content-Type: application/json", "Content-Length: 1000")
    answer = _raw_request(server.url, _head("POST", "/api/runs", *promised))
    assert answer.startswith("HTTP/1.1 401"), answer
    bad_key = "Authorization: Bearer bosun_0123456789ab_" + "x" * 43
    answer = _raw_request(server.url, _head("POST", "/api/runs", *promised, bad_key))
    assert answer.startswith("HTTP/1.1 401"), answer
    form = ("Content-Type: application/x-www-form-urlencoded", "Content-Length: 1000")
    answer = _raw_request(server.url, _head("POST", "/controls/kill", *form))
    assert answer.startswith("HTTP/1.1 303") and "location: /login" in answer.lower(), answer


def test_an_oversized_body_gets_413_with_a_length_or_chunked(server: Running):
    big = {"agent": "quick", "input": "x" * (MiB + 10)}
    with server.admin() as c:
        r = c.post("/api/runs", json=big)
        assert r.status_code == 413 and "--max-body-bytes" in r.json()["detail"]

        def chunks(total: int):
            yield b'{"agent": "quick", "input": "'
            for _ in range(total // 65536):
                yield b"y" * 65536
            yield b'"}'

        headers = {"content-type": "application/json"}
        r = c.post("/api/runs", content=chunks(4 * MiB), headers=headers)  # no Content-Length
        assert r.status_code == 413, r.text[:300]
        r = c.post("/api/runs", content=chunks(65536), headers=headers)  # under the limit
        assert r.status_code == 201, r.text[:300]
    with server.client(follow_redirects=False) as browser:  # a console form, logged in
        log_in(browser, server.admin_key)
        csrf = re.search(r'name="csrf" value="([^"]+)"', browser.get("/runs").text).group(1)
        r = browser.post("/runs", data={"csrf": csrf, "agent": "quick", "input": "z" * 2 * MiB})
        assert r.status_code == 413


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[dict]:
    """`bosun serve` as its own process (its memory is its own), with the options under test."""
    db = str(tmp_path_factory.mktemp("served") / "bosun.db")
    port = _free_port()
    command = [sys.executable, "-m", "bosun", "serve", "--db", db, "--port", str(port)]
    command += ["--no-workers", "--max-body-bytes", "65536", "--trusted-proxy", "127.0.0.1"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "BOSUN_TRUSTED_PROXIES": "10.0.0.0/8"}
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    key = None
    for line in proc.stdout:
        if found := re.search(r"bosun_[0-9a-f]{12}_\S+", line):
            key = found.group(0)
            break
    assert key, "bosun serve printed no admin key"
    threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep the pipe drained
    try:
        yield {"url": f"http://127.0.0.1:{port}", "key": key, "pid": proc.pid, "db": db}
    finally:
        proc.terminate()
        proc.wait(30)


def test_a_huge_anonymous_upload_is_refused_at_once_and_never_buffered(served):
    before = _rss_kib(served["pid"])
    head = _head("POST", "/api/runs", "Content-Type: application/json", "Content-Length: 314572800")
    host, port = served["url"].removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(head.encode() + b"\r\n")
        block = b"z" * MiB
        try:
            for _ in range(64):  # 64 MiB of the promised 300 MB
                sock.sendall(block)
        except OSError:
            pass  # the server may stop listening: what matters is its answer and its memory
        answer = sock.recv(65536).decode("latin-1")
    assert answer.startswith(("HTTP/1.1 401", "HTTP/1.1 413")), answer
    assert _rss_kib(served["pid"]) - before < 24 * 1024  # KiB: nothing like the 64 MiB sent


def test_bosun_serve_options_set_the_body_limit_and_the_trusted_proxies(served):
    with httpx.Client(base_url=served["url"], timeout=20) as c:
        auth = {"Authorization": f"Bearer {served['key']}"}
        before = _rss_kib(served["pid"])

        def chunks():
            for _ in range(32 * 16):  # 32 MiB, chunked
                yield b"q" * 65536

        r = c.post("/api/runs", content=chunks(), headers={**auth, "content-type": "text/plain"})
        assert r.status_code == 413 and "65,536 bytes" in r.json()["detail"]
        assert _rss_kib(served["pid"]) - before < 16 * 1024
        # --trusted-proxy 127.0.0.1 and BOSUN_TRUSTED_PROXIES=10.0.0.0/8: the client is the
        # right-most address that is not one of them.
        forwarded = {"X-Forwarded-For": "6.6.6.6, 198.51.100.9, 10.0.0.1"}
        r = c.get("/api/runs", headers={"Authorization": "Bearer nope", **forwarded})
        assert r.status_code == 401
    actors = {e.actor for e in _audit(served["db"]) if e.action == "auth_failed"}
    assert actors == {"ip:198.51.100.9"}


# -- 7. login CSRF, security headers, banners, forwarded addresses -----------------------------


def test_a_login_posted_from_another_site_is_refused_and_sets_no_session(server: Running):
    key = server.key("login", "viewer", "victim")
    with server.client(follow_redirects=False) as attacker_page:
        # What a form on another origin can send: no token (the SameSite=Strict cookie that
        # holds it is not sent cross-site, and the page cannot read it).
        r = attacker_page.post("/login", data={"key": key})
        assert r.status_code == 403 and "bosun_session" not in r.headers.get("set-cookie", "")
        assert attacker_page.get("/runs").status_code == 303
    with server.client(follow_redirects=False) as browser:
        token = re.search(r'name="csrf" value="([^"]+)"', browser.get("/login").text).group(1)
        for headers in (
            {"Sec-Fetch-Site": "cross-site"},
            {"Sec-Fetch-Site": "same-site"},
            {"Origin": "http://evil.example"},
            {"Origin": "null"},
        ):
            r = browser.post("/login", data={"key": key, "csrf": token}, headers=headers)
            assert r.status_code == 403, headers
            assert "bosun_session" not in r.headers.get("set-cookie", ""), headers
        r = browser.post("/login", data={"key": key, "csrf": token + "x"})
        assert r.status_code == 403
        assert browser.get("/runs").status_code == 303
        same_site = {"Sec-Fetch-Site": "same-origin", "Origin": server.url}
        form = {"key": key, "csrf": token, "next": "/\\evil.example"}  # not off-site either
        r = browser.post("/login", data=form, headers=same_site)
        assert r.status_code == 303 and "bosun_session" in r.headers["set-cookie"]
        assert r.headers["location"] == "/runs"
        assert browser.get("/runs").status_code == 200


def test_a_cookie_post_from_another_site_is_refused_even_with_the_token(server: Running):
    with server.client(follow_redirects=False) as browser:
        log_in(browser, server.admin_key)
        csrf = re.search(r'name="csrf" value="([^"]+)"', browser.get("/runs").text).group(1)
        form = {"csrf": csrf, "scope": "tenant:default", "reason": "from elsewhere"}
        r = browser.post("/controls/kill", data=form, headers={"Sec-Fetch-Site": "cross-site"})
        assert r.status_code == 403
    with server.admin() as c:  # a bearer key is not a browser: no site to check
        assert "tenant:default" not in {k["scope"] for k in c.get("/api/kill-switches").json()}


def _assert_security_headers(r: httpx.Response, *, stored: bool = False) -> None:
    csp = r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] in ("no-referrer", "same-origin", "strict-origin")
    if not stored:
        assert r.headers["cache-control"] == "no-store", r.url


def test_every_response_carries_the_security_headers(server: Running):
    with server.client(follow_redirects=False) as anonymous:
        for path in ("/login", "/runs", "/api/runs", "/healthz", "/openapi.json", "/nowhere"):
            _assert_security_headers(anonymous.get(path))
        _assert_security_headers(anonymous.get("/static/console.js"), stored=True)
        _assert_security_headers(anonymous.post("/api/runs", content=b"x" * (2 * MiB)))  # 413
        log_in(anonymous, server.admin_key)
        for path in ("/runs", "/approvals", "/controls", "/costs", "/api/runs"):
            _assert_security_headers(anonymous.get(path))
        with anonymous.stream("GET", "/api/stream") as stream:
            _assert_security_headers(stream)
    with server.admin() as c:
        _assert_security_headers(c.get("/api/runs"))


def test_console_templates_have_no_inline_script_or_style():
    """The CSP allows no inline script or style; the browser test proves the console works
    with it, this says where to look when it does not."""
    for template in (ROOT / "src" / "bosun" / "server" / "templates").glob("*.html"):
        text = template.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), template.name
        assert not re.search(r"\son[a-z]+\s*=", text), template.name
        assert not re.search(r"<style|\sstyle\s*=", text), template.name


def test_console_banners_show_only_what_the_server_signed_for_this_session(server: Running):
    phish = "Your session expired: call IT on 555-0100 and read them your API key"
    with server.client(follow_redirects=False) as browser:
        log_in(browser, server.admin_key)
        forged = ({"msg": phish}, {"err": phish}, {"msg": phish, "msg_sig": "0" * 32},
                  {"err": phish, "err_sig": "é" * 32})  # fmt: skip
        for query in forged:
            r = browser.get("/runs", params=query)
            assert r.status_code == 200 and "555-0100" not in r.text, query
        csrf = re.search(r'name="csrf" value="([^"]+)"', browser.get("/controls").text).group(1)
        r = browser.post("/controls/unkill", data={"csrf": csrf, "scope": "tenant:nothing-set"})
        banner = r.headers["location"]
        assert 'class="flash err"' in browser.get(banner).text
        assert "No kill switch was set for tenant:nothing-set" in browser.get(banner).text
    with server.client(follow_redirects=False) as other:  # another session: nothing shown
        log_in(other, server.admin_key)
        assert "No kill switch was set" not in other.get(banner).text


@pytest.fixture
def strict_server(tmp_path) -> Iterator[Running]:
    running, stop = start_server(str(tmp_path / "b.db"), workers=False, auth_failures_per_minute=3)
    try:
        yield running
    finally:
        stop()


def test_x_forwarded_for_from_an_untrusted_peer_evades_nothing(strict_server: Running):
    bad = "bosun_0123456789ab_" + "y" * 43
    with strict_server.client(bad) as c:
        statuses = [
            c.get("/api/runs", headers={"X-Forwarded-For": f"203.0.113.{n}"}).status_code
            for n in range(5)
        ]
    with strict_server.client(follow_redirects=False) as c:
        login = log_in(c, bad)
    assert statuses == [401, 401, 401, 429, 429] and login.status_code == 429
    failed = [e for e in _audit(strict_server.settings.db) if e.action.startswith("auth_")]
    assert {e.actor for e in failed} == {"ip:127.0.0.1"}


def test_x_forwarded_for_from_a_trusted_proxy_names_the_client(tmp_path):
    db = str(tmp_path / "b.db")
    proxies = ["127.0.0.1", "10.0.0.0/8"]
    running, stop = start_server(
        db, workers=False, auth_failures_per_minute=3, trusted_proxies=proxies
    )
    bad = "bosun_0123456789ab_" + "y" * 43
    try:
        with running.client(bad) as c:

            def status(forwarded: str) -> int:
                return c.get("/api/runs", headers={"X-Forwarded-For": forwarded}).status_code

            # The client cannot escape its count by writing addresses left of its own.
            first = [status(f"6.6.6.{n}, 198.51.100.7, 10.1.2.3") for n in range(4)]
            other = status("198.51.100.8")  # another client behind the proxy: its own count
    finally:
        stop()
    assert first == [401, 401, 401, 429] and other == 401
    actors = [e.actor for e in _audit(db) if e.action == "auth_failed"]
    assert actors == ["ip:198.51.100.7"] * 3 + ["ip:198.51.100.8"]


def test_a_malformed_trusted_proxy_is_refused_when_the_server_is_made():
    with pytest.raises(BosunError, match="not an IP address or network"):
        create_app(Settings(db=":memory:", trusted_proxies=["10.0.0.0/8", "proxy.internal"]))
