"""`bosun mcp proxy --stdio` as a desktop client starts it, called with the SDK's own
`mcp.Client`: each call governed and journaled, one run per client session."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import sys

import pytest
from mcp import Client, StdioServerParameters
from proxy_helpers import bosun, env, ledger, ledger_env, pending_approvals, runs, write_proxy

pytestmark = pytest.mark.slow


def proxy(folder, db: str, **kw) -> Client:
    config = write_proxy(folder, db, **kw)
    args = ["-m", "bosun", "mcp", "proxy", "--config", str(config), "--stdio", "--name", "ana"]
    return Client(
        StdioServerParameters(command=sys.executable, args=args, env=env(**ledger_env(folder)))
    )


async def test_a_read_call_passes_through_and_the_session_is_one_run_with_its_calls(tmp_path):
    db = str(tmp_path / "bosun.db")
    async with proxy(tmp_path, db) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        first = await client.call_tool("get_current_time", {"timezone": "Europe/Lisbon"})
        second = await client.call_tool("ledger_balance", {})
        [run] = runs(db)
        assert run["status"] == "running"  # while the session lives
    assert {"get_current_time", "convert_time", "ledger_balance", "ledger_wire"} <= names
    assert not first.is_error
    assert first.structured_content["timezone"] == "Europe/Lisbon"
    assert second.structured_content == {"result": "0 entries"}
    [run] = runs(db)
    assert run["agent"] == "desk"
    assert run["status"] == "succeeded"  # the session closed
    shown = bosun("show", "--db", db, "--calls", run["run_id"])
    assert shown.returncode == 0, shown.stderr
    assert "get_current_time" in shown.stdout and "ledger_balance" in shown.stdout
    spans = await traced(db, run["run_id"])
    tools = {
        s.attributes.get("gen_ai.tool.name") for s in spans if s.name.startswith("execute_tool")
    }
    assert {"get_current_time", "ledger_balance"} <= tools
    usage = bosun("usage", "--db", db)
    assert usage.returncode == 0 and "desk" in usage.stdout  # costed like any agent's runs


async def traced(db: str, run_id: str) -> list:
    """The run's trace, as `bosun export-trace` sends it (to memory here)."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from bosun.observe.tracing import export_run
    from bosun.store import open_store

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    store = open_store(db)
    await store.open()
    try:
        await export_run(store, run_id, provider)
    finally:
        await store.close()
    return list(exporter.get_finished_spans())


async def test_a_denied_call_is_a_tool_error_with_the_policy_reason_and_never_runs(tmp_path):
    db = str(tmp_path / "bosun.db")
    async with proxy(tmp_path, db) as client:
        denied = await client.call_tool("ledger_wire", {"amount": 10, "to": "mallory"})
        after = await client.call_tool("ledger_balance", {})
    assert denied.is_error
    assert "no-wires-to-mallory" in denied.content[0].text
    assert "Mallory is not a payee." in denied.content[0].text
    assert after.structured_content == {"result": "0 entries"}  # the session goes on
    assert ledger(tmp_path) == []


async def test_an_approval_gated_call_waits_for_bosun_approve_in_another_process(tmp_path):
    db = str(tmp_path / "bosun.db")
    progress: list[str] = []

    async def on_progress(_done, _total, message):
        progress.append(message or "")

    async with proxy(tmp_path, db) as client:
        call = asyncio.create_task(
            client.call_tool(
                "ledger_wire", {"amount": 25, "to": "bob"}, progress_callback=on_progress
            )
        )
        pending = []
        for _ in range(300):  # the call parks the run; its approval appears
            pending = await asyncio.to_thread(pending_approvals, db)
            if pending:
                break
            await asyncio.sleep(0.1)
        [approval] = pending
        assert not call.done()  # the client is still waiting
        assert ledger(tmp_path) == []
        approval_id = approval.get("approval_id") or approval.get("id")
        done = await asyncio.to_thread(bosun, "approve", "--db", db, approval_id, "--by", "sam")
        assert done.returncode == 0, done.stderr
        result = await asyncio.wait_for(call, 60)
    assert not result.is_error, result.content
    assert result.structured_content == {"result": "wired 25.0 to bob"}
    assert ledger(tmp_path) == ["wire 25.0 bob"]
    assert any(approval_id in m for m in progress)


async def test_an_undecided_approval_times_out_as_a_clear_error_and_never_runs(tmp_path):
    db = str(tmp_path / "bosun.db")
    async with proxy(tmp_path, db, approval_timeout=1) as client:
        result = await client.call_tool("ledger_wire", {"amount": 5, "to": "bob"})
        later = await client.call_tool("ledger_balance", {})
    assert result.is_error
    assert "timed out" in result.content[0].text and "approval_timeout" in result.content[0].text
    assert later.structured_content == {"result": "0 entries"}
    assert ledger(tmp_path) == []
    assert pending_approvals(db) == []


async def test_a_kill_switch_refuses_the_next_call(tmp_path):
    db = str(tmp_path / "bosun.db")
    async with proxy(tmp_path, db) as client:
        ok = await client.call_tool("ledger_record", {"note": "first"})
        killed = await asyncio.to_thread(
            bosun, "kill", "--db", db, "--scope", "agent:desk", "--reason", "incident 7"
        )
        assert killed.returncode == 0, killed.stderr
        refused = await client.call_tool("ledger_record", {"note": "second"})
        again = await client.call_tool("ledger_balance", {})
    assert not ok.is_error
    assert refused.is_error and "incident 7" in refused.content[0].text
    assert again.is_error and "killed" in again.content[0].text
    assert ledger(tmp_path) == ["note first"]
    [run] = runs(db)
    assert run["status"] == "killed"


async def test_a_session_idle_past_idle_timeout_ends_its_run_and_the_next_call_starts_one(tmp_path):
    db = str(tmp_path / "bosun.db")
    async with proxy(tmp_path, db, idle_timeout=1) as client:
        await client.call_tool("ledger_balance", {})
        for _ in range(100):  # well past the 1 s idle timeout
            if runs(db)[0]["status"] == "succeeded":
                break
            await asyncio.sleep(0.1)
        later = await client.call_tool("ledger_balance", {})
    assert not later.is_error
    first, second = sorted(runs(db), key=lambda r: r["started"])
    assert first["status"] == "succeeded"
    assert "the session idled out" in bosun("show", "--db", db, first["run_id"]).stdout
    assert second["status"] == "succeeded"


async def test_a_rate_limit_refuses_calls_past_it_and_observe_autonomy_shadows(tmp_path):
    db = str(tmp_path / "bosun.db")
    extra = """\
        rate_limits:
          - {tools: [ledger_balance], per: user, limit: 1, window_seconds: 3600}
        tool_autonomy: {ledger_record: observe}
    """
    async with proxy(tmp_path, db, extra=extra) as client:
        first = await client.call_tool("ledger_balance", {})
        second = await client.call_tool("ledger_balance", {})
        shadowed = await client.call_tool("ledger_record", {"note": "only recorded"})
    assert not first.is_error
    assert second.is_error and "rate" in second.content[0].text.lower()
    assert shadowed.is_error and "shadowed" in shadowed.content[0].text
    assert ledger(tmp_path) == []


def _proxy_pids(config_folder) -> list[int]:
    """The `bosun mcp proxy` processes started with a config in `config_folder`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if b"proxy" in argv and any(str(config_folder).encode() in a for a in argv):
            found.append(int(entry))
    return found


async def test_a_run_left_running_by_a_sigkilled_proxy_is_ended_when_the_proxy_starts_again(
    tmp_path,
):
    db = str(tmp_path / "bosun.db")
    with contextlib.suppress(Exception):  # the client sees its server vanish
        async with proxy(tmp_path, db) as client:
            ok = await client.call_tool("ledger_balance", {})
            assert not ok.is_error
            [pid] = _proxy_pids(tmp_path)
            os.kill(pid, signal.SIGKILL)
            await asyncio.sleep(0.5)
    [orphan] = runs(db)
    assert orphan["status"] == "running"  # nobody closed it
    # Its lease runs out (here at once, instead of waiting the 30 s a lease lasts).
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE runs SET lease_expires_at = 0 WHERE id = ?", (orphan["run_id"],))
    conn.close()
    async with proxy(tmp_path, db) as client:
        again = await client.call_tool("ledger_balance", {})
    assert not again.is_error
    by_id = {r["run_id"]: r for r in runs(db)}
    assert by_id[orphan["run_id"]]["status"] == "failed"
    assert "not in this process" in (by_id[orphan["run_id"]]["reason"] or "")
    assert [r["status"] for r in by_id.values() if r["run_id"] != orphan["run_id"]] == ["succeeded"]
