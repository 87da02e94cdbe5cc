"""The offline end-to-end demo behind `make demo`: a support agent refunds an order.

Runs on an embedded SQLite file under .demo/. The refund is above the policy's
threshold, so the run parks durably until a supervisor approves; the demo
approves it through the same code path `bosun approve` uses, a worker resumes
the run from its journal, and the demo prints the timeline and the audit trail.
Last, an agent takes a tool from a real MCP server (`mcp-server-time` over stdio,
examples/mcp/agent.yaml; `make demo` installs it) and the demo shows its one call.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
MCP_AGENT = HERE.parent / "mcp" / "agent.yaml"
DEMO_DIR = Path(os.environ.get("BOSUN_DEMO_DIR", ".demo")).resolve()


def banner(text: str) -> None:
    print(f"\n=== {text} ===")


async def main() -> None:
    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    DEMO_DIR.mkdir(parents=True)
    os.environ["SUPPORT_DATA_DIR"] = str(DEMO_DIR)

    from bosun import Runtime, Worker, load_agent
    from bosun.govern import audit
    from bosun.observe.timeline import render

    db = DEMO_DIR / "bosun.db"
    agent = load_agent(str(HERE / "agent.yaml"))
    request = "My trail running shoes from order 1234 fell apart after two runs. Refund please?"
    print(f"Agent {agent.version_id}: {len(agent.tools)} tools, model {agent.model_spec.provider}")
    print(f"Customer: {request}")

    async with Runtime(str(db)) as rt:
        banner("1. The agent works until the refund needs a supervisor")
        result = await rt.run(agent, request, user="ana@example.com", tags={"order": "1234"})
        print(render(await rt.get_run(result.run_id), await rt.events(result.run_id)))

        banner("2. The approvals inbox (bosun approvals)")
        pending = await rt.approvals()
        for a in pending:
            print(f"{a.id}: {a.tool}({a.arguments}) needs role {a.role}: {a.reason}")

        banner("3. A supervisor approves (bosun approve ID --comment ...)")
        for a in pending:
            await rt.approve(a.id, by="sam@shop.example", comment="receipt checked, within 30 days")
            print(f"approved {a.id} as sam@shop.example")

        banner("4. A worker resumes the run from its journal")
        await Worker(rt, poll_interval=0.05).serve(exit_when_idle=True)
        run = await rt.get_run(result.run_id)
        print(render(run, await rt.events(result.run_id)))

        banner("5. The audit trail (bosun audit export / verify)")
        for record in await rt.store.audit_records():
            e = record.entry
            detail = e.data.get("verdict") or e.data.get("status") or e.data.get("decision") or ""
            print(f"#{record.seq:<3} {e.action:<20} {e.actor:<18} {detail:<16} {record.hash[:16]}…")
        verification = await audit.verify(rt.store)
        print(
            f"hash chain: {'intact' if verification.ok else 'TAMPERED'} ({verification.records} records)"
        )

        banner("6. A tool from an MCP server (mcp-server-time over stdio)")
        clock = await mcp_step(rt)

    ledger = (DEMO_DIR / "payments.jsonl").read_text().splitlines()
    print(f"\nPayments ledger: {len(ledger)} refund(s) written, exactly once.")
    print(f"Database: {db}")
    print("Explore it:")
    print(f"  .venv/bin/bosun runs --db {db}")
    print(f"  .venv/bin/bosun show {result.run_id} --db {db}")
    print(f"  .venv/bin/bosun audit verify --db {db}")
    print(f"  .venv/bin/bosun show --calls {clock.id} --db {db}")
    for finished in (run, clock):
        if finished.status != "succeeded":
            raise SystemExit(f"demo run {finished.id} ended {finished.status}: {finished.reason}")


async def mcp_step(rt):
    """Run examples/mcp/agent.yaml: its scripted model asks the time server for the time in
    Lisbon; the call goes through the same governance and journal as a Python tool's."""
    from bosun import SpecError, load_agent
    from bosun.journal.calls import calls
    from bosun.observe.timeline import render

    try:
        agent = load_agent(str(MCP_AGENT))
    except SpecError as exc:
        sys.exit(
            f"{exc}\nThe MCP step needs mcp-server-time: `make demo` installs it "
            "(or: pip install mcp-server-time)"
        )
    result = await rt.run(agent, "What time is it in Lisbon?")
    run = await rt.get_run(result.run_id)
    events = await rt.events(result.run_id)
    print(render(run, events))
    for call in calls(events):
        answer = getattr(call.ended, "result", None)
        effect = agent.tool_map[call.tool].effect
        print(f"MCP call: {call.tool}({call.arguments}) [{effect}] -> {answer}")
    return run


if __name__ == "__main__":
    asyncio.run(main())
