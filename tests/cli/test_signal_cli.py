"""`bosun signal RUN_ID NAME --data JSON`, as a user runs it (real subprocesses, a real
database): it wakes the waiting run with the payload; bad JSON and finished runs are refused
with a message that says what to do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "waits" / "agent.py"


def bosun(*args: str, db: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "bosun", *args, "--db", db],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"bosun {args} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")
    return proc


def worker(db: str) -> None:
    bosun("worker", "--exit-when-idle", "--poll-interval", "0.05", db=db)


def status(db: str, run_id: str) -> str:
    runs = json.loads(bosun("runs", "--json", db=db).stdout)
    return next(r["status"] for r in runs if r["run_id"] == run_id)


def test_signal_wakes_the_waiting_run_with_its_payload(tmp_path):
    db = str(tmp_path / "w.db")
    run_id = bosun("submit", str(EXAMPLE), "-i", "A1?", db=db).stdout.strip()
    worker(db)
    assert status(db, run_id) == "waiting"
    out = bosun("signal", run_id, "stock", "--data", '{"in_stock": 3}', db=db).stdout
    assert "delivered" in out
    worker(db)
    assert status(db, run_id) == "succeeded"
    events = json.loads(bosun("show", run_id, "--json", db=db).stdout)
    [resolved] = [e for e in events if e["kind"] == "wait_resolved"]
    assert resolved["result"] == {"in_stock": 3}
    timeline = bosun("show", run_id, db=db).stdout
    assert "WAIT" in timeline and "stock" in timeline


def test_bad_json_is_refused_with_an_example_and_nothing_is_delivered(tmp_path):
    db = str(tmp_path / "w.db")
    run_id = bosun("submit", str(EXAMPLE), "-i", "A1?", db=db).stdout.strip()
    worker(db)
    bad = bosun("signal", run_id, "stock", "--data", "{in_stock: 3", db=db, check=False)
    assert bad.returncode == 2
    assert "--data must be JSON" in bad.stderr and "--data '{" in bad.stderr
    assert status(db, run_id) == "waiting"


def test_a_signal_to_a_finished_run_is_refused(tmp_path):
    db = str(tmp_path / "w.db")
    run_id = bosun("submit", str(EXAMPLE), "-i", "A1?", db=db).stdout.strip()
    bosun("cancel", run_id, db=db)
    worker(db)
    refused = bosun("signal", run_id, "stock", "--data", "{}", db=db, check=False)
    assert refused.returncode == 2 and "is cancelled" in refused.stderr
    unknown = bosun("signal", "run_nope", "stock", db=db, check=False)
    assert unknown.returncode == 2 and "no run 'run_nope'" in unknown.stderr
