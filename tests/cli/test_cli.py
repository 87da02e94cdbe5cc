"""The `bosun` command end to end, as a user runs it: real subprocesses, a real database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEMO_AGENT = ROOT / "examples" / "support" / "agent.yaml"


def bosun(*args: str, db: str, env: dict[str, str] | None = None, check: bool = True):
    proc = subprocess.run(
        [sys.executable, "-m", "bosun", *args, "--db", db],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"bosun {args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


@pytest.fixture
def demo_env(tmp_path) -> dict[str, str]:
    return {"SUPPORT_DATA_DIR": str(tmp_path / "data")}


def test_run_prints_the_answer_and_run_id_then_show_and_runs(tmp_path, demo_env):
    db = str(tmp_path / "b.db")
    proc = bosun("run", str(DEMO_AGENT), "--input", "refund order 1234", db=db, env=demo_env)
    assert "Refunded 89.90 for order 1234" in proc.stdout
    run_id = proc.stderr.split("run ")[1].split(":")[0]
    assert run_id.startswith("run_")

    shown = bosun("show", run_id, db=db).stdout
    assert "[succeeded]" in shown and "issue_refund" in shown and "answer: Refunded" in shown

    events = json.loads(bosun("show", run_id, "--json", db=db).stdout)
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))

    listing = bosun("runs", db=db).stdout.splitlines()
    assert listing[0].split() == [
        "RUN",
        "AGENT",
        "STATUS",
        "STEPS",
        "TOKENS",
        "COST",
        "STARTED",
        "DURATION",
    ]
    assert run_id in listing[1] and "succeeded" in listing[1]

    payments = (tmp_path / "data" / "payments.jsonl").read_text().splitlines()
    assert len(payments) == 1


def test_run_json_output_is_machine_readable(tmp_path, demo_env):
    db = str(tmp_path / "b.db")
    out = json.loads(bosun("run", str(DEMO_AGENT), "-i", "x", "--json", db=db, env=demo_env).stdout)
    assert out["status"] == "succeeded" and out["steps"] == 5 and out["tool_calls"] == 4
    assert out["cost"] > 0 and out["run_id"].startswith("run_")


def test_a_failed_run_exits_nonzero_with_the_reason(tmp_path, demo_env):
    db = str(tmp_path / "b.db")
    proc = bosun(
        "run", str(DEMO_AGENT), "-i", "x", "--max-steps", "2", db=db, env=demo_env, check=False
    )
    assert proc.returncode == 1
    assert "limit_exceeded" in proc.stdout and "max_steps" in proc.stdout


def test_submit_then_worker_processes_the_queue(tmp_path, demo_env):
    db = str(tmp_path / "b.db")
    ids = [
        bosun("submit", str(DEMO_AGENT), "-i", f"r{i}", db=db, env=demo_env).stdout.strip()
        for i in range(3)
    ]
    queued = json.loads(bosun("runs", "--json", db=db).stdout)
    assert {r["status"] for r in queued} == {"queued"}
    bosun("worker", "--exit-when-idle", "--poll-interval", "0.05", db=db, env=demo_env)
    done = {r["run_id"]: r["status"] for r in json.loads(bosun("runs", "--json", db=db).stdout)}
    assert done == dict.fromkeys(ids, "succeeded")


def test_cancel_a_queued_run(tmp_path, demo_env):
    db = str(tmp_path / "b.db")
    run_id = bosun("submit", str(DEMO_AGENT), "-i", "x", db=db, env=demo_env).stdout.strip()
    assert "next step boundary" in bosun("cancel", run_id, db=db).stdout
    bosun("worker", "--exit-when-idle", "--poll-interval", "0.05", db=db, env=demo_env)
    run = json.loads(bosun("runs", "--json", db=db).stdout)[0]
    assert run["status"] == "cancelled"
    assert not (tmp_path / "data" / "payments.jsonl").exists()  # nothing executed
    again = bosun("cancel", run_id, db=db, check=False)
    assert again.returncode == 1 and "already finished" in again.stdout


def test_gc_removes_old_journals_and_keeps_the_summary(tmp_path, demo_env):
    db = str(tmp_path / "b.db")
    out = json.loads(bosun("run", str(DEMO_AGENT), "-i", "x", "--json", db=db, env=demo_env).stdout)
    kept = bosun("gc", "--older-than", "30d", db=db).stdout
    assert "removed the journals of 0 finished runs" in kept
    freed = bosun("gc", "--older-than", "0s", db=db).stdout
    assert "removed the journals of 1 finished runs" in freed and "KiB freed" in freed
    summary = json.loads(bosun("runs", "--json", db=db).stdout)[0]
    assert summary["run_id"] == out["run_id"] and summary["status"] == "succeeded"
    assert json.loads(bosun("show", out["run_id"], "--json", db=db).stdout) == []


def test_errors_are_clear_and_exit_2(tmp_path):
    db = str(tmp_path / "b.db")
    missing = bosun("show", "run_nope", db=db, check=False)
    assert missing.returncode == 2 and "no run 'run_nope'" in missing.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text(textwrap.dedent("name: x\nlimits:\n  max_cost: ten\n"))
    proc = bosun("run", str(bad), "-i", "x", db=db, check=False)
    assert proc.returncode == 2 and f"agent file {bad}, line 3: `limits.max_cost`" in proc.stderr
    duration = bosun("gc", "--older-than", "forever", db=db, check=False)
    assert duration.returncode == 2 and "not a duration" in duration.stderr


def test_db_defaults_to_bosun_db_env(tmp_path, demo_env):
    db = str(tmp_path / "from_env.db")
    proc = subprocess.run(
        [sys.executable, "-m", "bosun", "run", str(DEMO_AGENT), "-i", "x"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **demo_env, "BOSUN_DB": db},
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert Path(db).exists() and not (tmp_path / "bosun.db").exists()


def test_make_demo_script_runs_offline_end_to_end(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "support" / "demo.py")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "BOSUN_DEMO_DIR": str(tmp_path / "demo")},
    )
    assert proc.returncode == 0, proc.stderr
    assert "[succeeded]" in proc.stdout
    assert "Payments ledger: 1 refund(s) written" in proc.stdout
    assert f"Database: {tmp_path / 'demo' / 'bosun.db'}" in proc.stdout
