"""Secrets never reach what people and exporters see: one redaction, at every edge.

A real `bosun serve` runs the `vault` agent (tests/server/agents.py): it proposes a login
whose `password` nothing declares sensitive; a person approves it with an edited password;
the tool fails with an error quoting that password. The journal keeps the real values (the
run needs them); the API's events, stream and approvals (to a viewer), `bosun show`,
`bosun approvals`, `bosun audit export` and traces show `[redacted]`.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))  # the server helpers
from server_helpers import AGENTS, TEST_AGENTS, Running, start_server, submit, wait_for

from bosun import Agent, Runtime, tool
from bosun.cli import main as cli_main
from bosun.journal.events import ApprovalResolved, ToolFailed

ORIGINAL = "hunter2-original"
EDITED = "s3cret-edited-by-approver"
SECRETS = (ORIGINAL, EDITED)
MASK = "[redacted]"


class Scenario:
    def __init__(self, running: Running, db: str, edited_run: str, kept_run: str, viewer: str):
        self.running, self.db = running, db
        self.edited_run, self.kept_run, self.viewer = edited_run, kept_run, viewer


def _approve(running: Running, run_id: str, arguments: dict) -> None:
    with running.admin() as admin:
        wait_for(admin, run_id, {"waiting_approval"})
        (pending,) = admin.get("/api/approvals", params={"run_id": run_id}).json()
        r = admin.post(
            f"/api/approvals/{pending['approval_id']}/approve", json={"arguments": arguments}
        )
        assert r.status_code == 200, r.text
        wait_for(admin, run_id, {"succeeded", "failed"})


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    db = str(tmp_path_factory.mktemp("redaction") / "bosun.db")
    running, stop = start_server(db, agents=[*AGENTS, f"{TEST_AGENTS}:vault"])
    try:
        with running.admin() as admin:
            edited = submit(admin, "vault", "log in")
            kept = submit(admin, "vault", "log in")
        # One approver changes the password; the other leaves the masked field as shown.
        _approve(running, edited, {"user": "ana", "password": EDITED})
        _approve(running, kept, {"user": "bo", "password": MASK})
        yield Scenario(running, db, edited, kept, running.key("default", "viewer"))
    finally:
        stop()


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text
    assert MASK in text


def journal(db: str, run_id: str):
    async def read():
        async with Runtime(db) as rt:
            return await rt.events(run_id)

    return asyncio.run(read())


def test_the_journal_keeps_the_real_values_the_tool_received(scenario):
    events = journal(scenario.db, scenario.edited_run)
    resolved = next(e for _, e in events if isinstance(e, ApprovalResolved))
    assert json.loads(resolved.arguments)["password"] == EDITED
    failed = next(e for _, e in events if isinstance(e, ToolFailed))
    assert EDITED in failed.message


def test_a_viewer_reading_events_sees_the_edited_password_masked(scenario):
    with scenario.running.client(scenario.viewer) as viewer:
        r = viewer.get(f"/api/runs/{scenario.edited_run}/events")
    assert r.status_code == 200
    assert_no_secret(r.text)
    resolved = next(e for e in r.json() if e["kind"] == "approval_resolved")
    assert json.loads(resolved["arguments"]) == {"user": "ana", "password": MASK}


def test_a_tool_error_quoting_the_password_is_masked(scenario):
    with scenario.running.client(scenario.viewer) as viewer:
        events = viewer.get(f"/api/runs/{scenario.edited_run}/events").json()
    failed = next(e for e in events if e["kind"] == "tool_failed")
    assert failed["message"] == f"auth failed for ana with password {MASK}"


def test_the_event_stream_masks_the_edited_password(scenario):
    with (
        scenario.running.client(scenario.viewer) as viewer,
        viewer.stream("GET", f"/api/runs/{scenario.edited_run}/stream") as r,
    ):
        body = "".join(r.iter_text())  # the run is finished: the stream ends with `end`
    assert "event: approval_resolved" in body and "event: end" in body
    assert_no_secret(body)


def test_a_stream_resumed_after_the_call_still_masks_the_error(scenario):
    events = journal(scenario.db, scenario.edited_run)
    resolved = next(seq for seq, e in events if isinstance(e, ApprovalResolved))
    with (
        scenario.running.client(scenario.viewer) as viewer,
        viewer.stream(
            "GET",
            f"/api/runs/{scenario.edited_run}/stream",
            headers={"Last-Event-ID": str(resolved)},
        ) as r,
    ):
        body = "".join(r.iter_text())
    assert "event: tool_failed" in body and "event: approval_resolved" not in body
    assert_no_secret(body)


def test_the_api_approvals_inbox_masks_default_sensitive_names(scenario):
    with scenario.running.client(scenario.viewer) as viewer:
        r = viewer.get("/api/approvals", params={"status": "all"})
    assert r.status_code == 200
    assert_no_secret(r.text)
    edited = next(a for a in r.json() if a["run_id"] == scenario.edited_run)
    assert edited["arguments"]["password"] == MASK
    assert edited["edited_arguments"] == {"user": "ana", "password": MASK}


def test_a_field_left_masked_by_the_approver_keeps_its_real_value(scenario):
    events = journal(scenario.db, scenario.kept_run)
    failed = next(e for _, e in events if isinstance(e, ToolFailed))
    assert failed.message == f"auth failed for bo with password {ORIGINAL}"


def test_bosun_show_json_masks_the_edited_password(scenario, capsys):
    assert cli_main(["show", scenario.edited_run, "--json", "--db", scenario.db]) == 0
    assert_no_secret(capsys.readouterr().out)
    assert cli_main(["show", scenario.edited_run, "--db", scenario.db]) == 0
    for secret in SECRETS:
        assert secret not in capsys.readouterr().out


def test_bosun_approvals_json_masks_arguments_and_edits(scenario, capsys):
    assert cli_main(["approvals", "--all", "--json", "--db", scenario.db]) == 0
    out = capsys.readouterr().out
    assert_no_secret(out)
    assert cli_main(["approvals", "--all", "--db", scenario.db]) == 0
    for secret in SECRETS:
        assert secret not in capsys.readouterr().out


def test_bosun_audit_export_holds_no_secret_and_still_verifies(scenario, tmp_path, capsys):
    out = tmp_path / "audit.jsonl"
    assert cli_main(["audit", "export", "-o", str(out), "--db", scenario.db]) == 0
    text = out.read_text()
    assert_no_secret(text)
    actions = {json.loads(line)["action"] for line in text.splitlines()}
    assert {"approval_requested", "approval_decided", "approval_resolved"} <= actions
    assert cli_main(["audit", "verify", "--db", scenario.db]) == 0
    assert "intact" in capsys.readouterr().out


# -- without a server --------------------------------------------------------------------


@tool(effect="write", sensitive=["pin"])
def call_partner(endpoint: str, api_key: str, headers: dict, body: dict, pin: str) -> dict:
    """Call a partner API; it answers with a session token."""
    return {"ok": True, "session": {"access_token": "tok-returned-by-partner"}}


PARTNER_ARGS = {
    "endpoint": "https://partner.example/orders",
    "api_key": "ak-live-123456",
    "headers": {"Authorization": "Bearer abc.def.ghi", "X-Request": "r1"},
    "body": {"order": "1234", "client-secret": "cs-987654", "items": [{"Token": "tk-555555"}]},
    "pin": "0042",
}
PARTNER_SECRETS = (
    "ak-live-123456",
    "abc.def.ghi",
    "cs-987654",
    "tk-555555",
    "0042",
    "tok-returned-by-partner",
)


def partner_agent() -> Agent:
    return Agent(
        name="partner",
        model={
            "provider": "scripted",
            "turns": [
                {"tool_calls": [{"name": "call_partner", "arguments": PARTNER_ARGS}]},
                # A model echoing what it saw: masked in its answer too.
                {"content": "Done; the session is tok-returned-by-partner (key ak-live-123456)."},
            ],
        },
        tools=[call_partner],
    )


def test_default_sensitive_names_are_masked_at_any_depth_without_declaring_them(tmp_path, capsys):
    db = str(tmp_path / "p.db")

    async def go() -> str:
        async with Runtime(db) as rt:
            return (await rt.run(partner_agent(), "order")).run_id

    run_id = asyncio.run(go())
    assert cli_main(["show", run_id, "--json", "--db", db]) == 0
    shown = json.loads(capsys.readouterr().out)
    text = json.dumps(shown)
    for secret in PARTNER_SECRETS:
        assert secret not in text
    proposed = next(e for e in shown if e["kind"] == "tool_proposed")
    assert json.loads(proposed["arguments"]) == {
        "endpoint": "https://partner.example/orders",
        "api_key": MASK,
        "headers": {"Authorization": MASK, "X-Request": "r1"},
        "body": {"order": "1234", "client-secret": MASK, "items": [{"Token": MASK}]},
        "pin": MASK,  # declared by the tool
    }
    finished = next(e for e in shown if e["kind"] == "tool_finished")
    assert finished["result"] == {"ok": True, "session": {"access_token": MASK}}
    answer = next(e for e in shown if e["kind"] == "run_finished")
    assert answer["output"] == f"Done; the session is {MASK} (key {MASK})."


@tool(effect="write")
def login(user: str, password: str) -> dict:
    """Log in."""
    raise RuntimeError(f"auth failed with password {password}")


async def test_traces_mask_sensitive_values_in_content_and_in_error_messages(tmp_path):
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from bosun.observe.tracing import export_run

    agent = Agent(
        name="tracer",
        model={
            "provider": "scripted",
            "turns": [
                {"tool_calls": [{"name": "login",
                                 "arguments": {"user": "ana", "password": ORIGINAL}}]},
                {"content": "no luck"},
            ],
        },
        tools=[login],
    )  # fmt: skip
    db = str(tmp_path / "t.db")
    async with Runtime(db) as rt:
        run_id = (await rt.run(agent, "log in")).run_id
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        await export_run(rt.store, run_id, provider, capture_content=True)
    spans = exporter.get_finished_spans()
    tool_span = next(s for s in spans if s.name == "execute_tool login")
    assert tool_span.status.description == f"auth failed with password {MASK}"
    assert json.loads(tool_span.attributes["gen_ai.tool.call.arguments"])["password"] == MASK
    dumped = " ".join(str(dict(s.attributes)) + str(s.status.description) for s in spans)
    assert ORIGINAL not in dumped
