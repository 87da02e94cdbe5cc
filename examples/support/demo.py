"""The offline end-to-end demo behind `make demo`: a support agent refunds an order.

Runs on an embedded SQLite file under .demo/, prints the run's timeline from
the journal and where the database is, so you can explore it with the CLI.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEMO_DIR = Path(os.environ.get("BOSUN_DEMO_DIR", ".demo")).resolve()


async def main() -> None:
    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    DEMO_DIR.mkdir(parents=True)
    os.environ["SUPPORT_DATA_DIR"] = str(DEMO_DIR)

    from bosun import Runtime, load_agent
    from bosun.observe.timeline import render

    db = DEMO_DIR / "bosun.db"
    agent = load_agent(str(HERE / "agent.yaml"))
    print(f"Agent {agent.version_id}: {len(agent.tools)} tools, model {agent.model_spec.provider}")
    request = "My trail running shoes from order 1234 fell apart after two runs. Refund please?"
    print(f"Customer: {request}\n")

    async with Runtime(str(db)) as rt:
        result = await rt.run(agent, request, user="ana@example.com", tags={"order": "1234"})
        run = await rt.get_run(result.run_id)
        print(render(run, await rt.events(result.run_id)))

    ledger = (DEMO_DIR / "payments.jsonl").read_text().splitlines()
    print(f"\nPayments ledger: {len(ledger)} refund(s) written, exactly once.")
    print(f"Database: {db}")
    print("Explore it:")
    print(f"  .venv/bin/bosun runs --db {db}")
    print(f"  .venv/bin/bosun show {result.run_id} --db {db}")
    print(f"  .venv/bin/bosun show {result.run_id} --db {db} --json")
    if result.status != "succeeded":
        raise SystemExit(f"demo run ended {result.status}: {result.reason}")


if __name__ == "__main__":
    asyncio.run(main())
