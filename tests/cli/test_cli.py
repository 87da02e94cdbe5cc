"""The `bosun` command end to end, as a user runs it: real subprocesses, a real database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bosun.server.schemas import Approval

ROOT = Path(__file__).resolve().parents[2]
DEMO_AGENT = ROOT / "examples" / "support" / "agent.yaml"
QUICKSTART = ROOT / "examples" / "quickstart" / "agent.py"


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


def run_id_of(proc) -> str:
    return proc.stderr.split("run ")[1].split(":")[0]


def test_run_prints_the_answer_and_run_id_then_show_and_runs(tmp_path):
    db = str(tmp_path / "b.db")
    proc = bosun("run", str(QUICKSTART), "--input", "Weather in Lisbon?", db=db)
    assert "70.7°F" in proc.stdout
    run_id = run_id_of(proc)
    assert run_id.startswith("run_")

    shown = bosun("show", run_id, db=db).stdout
    assert "[succeeded]" in shown and "get_weather" in shown and "answer: It is 70.7" in shown

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


def test_run_json_output_is_machine_readable(tmp_path):
    db = str(tmp_path / "b.db")
    out = json.loads(bosun("run", str(QUICKSTART), "-i", "x", "--json", db=db).stdout)
    assert out["status"] == "succeeded" and out["steps"] == 3 and out["tool_calls"] == 2
    assert out["cost"] > 0 and out["run_id"].startswith("run_")


def test_refund_waits_for_approval_then_a_worker_finishes_it(tmp_path, demo_env):
    db = str(tmp_path / "b.db")
    parked = bosun("run", str(DEMO_AGENT), "-i", "refund 1234", db=db, env=demo_env, check=False)
    assert parked.returncode == 1 and "[waiting_approval]" in parked.stdout
    run_id = run_id_of(parked)
    pending = json.loads(bosun("approvals", "--json", db=db).stdout)
    assert [(a["tool"], a["role"], a["run_id"]) for a in pending] == [
        ("issue_refund", "supervisor", run_id)
    ]
    approval_id = pending[0]["approval_id"]
    assert f"bosun approve {approval_id}" in parked.stdout
    assert not (tmp_path / "data" / "payments.jsonl").exists()  # nothing paid while waiting

    ok = bosun("approve", approval_id, "--comment", "receipt checked", "--by", "sam", db=db)
    assert "approved" in ok.stdout
    twice = bosun("approve", approval_id, "--by", "eve", db=db, check=False)
    assert twice.returncode == 2 and "already approved by sam" in twice.stderr

    bosun("worker", "--exit-when-idle", "--poll-interval", "0.05", db=db, env=demo_env)
    shown = bosun("show", run_id, db=db).stdout
    assert "[succeeded]" in shown and "approval approved by sam" in shown
    assert "REQUIRE_APPROVAL by rule refunds-over-50-need-a-supervisor" in shown
    payments = (tmp_path / "data" / "payments.jsonl").read_text().splitlines()
    assert len(payments) == 1 and json.loads(payments[0])["amount"] == 89.9
    assert bosun("approvals", db=db).stdout.strip() == "no pending approvals"
    assert "intact" in bosun("audit", "verify", db=db).stdout


def test_edit_and_approve_runs_the_edited_call(tmp_path, demo_env):
    db = str(tmp_path / "b.db")
    bosun("run", str(DEMO_AGENT), "-i", "refund", db=db, env=demo_env, check=False)
    approval_id = json.loads(bosun("approvals", "--json", db=db).stdout)[0]["approval_id"]
    bad = bosun("approve", approval_id, "--edit", '{"amount": "lots"}', db=db, check=False)
    assert bad.returncode == 2 and "do not fit issue_refund" in bad.stderr
    edit = '{"order_id": "1234", "amount": 45.0, "reason": "partial refund"}'
    bosun("approve", approval_id, "--edit", edit, "--by", "sam", db=db)
    bosun("worker", "--exit-when-idle", "--poll-interval", "0.05", db=db, env=demo_env)
    payments = (tmp_path / "data" / "payments.jsonl").read_text().splitlines()
    assert [json.loads(p)["amount"] for p in payments] == [45.0]


def test_deny_tells_the_model_and_nothing_is_paid(tmp_path, demo_env):
    db = str(tmp_path / "b.db")
    parked = bosun("run", str(DEMO_AGENT), "-i", "refund", db=db, env=demo_env, check=False)
    approval_id = json.loads(bosun("approvals", "--json", db=db).stdout)[0]["approval_id"]
    bosun("deny", approval_id, "--reason", "worn shoes are not eligible", "--by", "sam", db=db)
    bosun("worker", "--exit-when-idle", "--poll-interval", "0.05", db=db, env=demo_env)
    events = json.loads(bosun("show", run_id_of(parked), "--json", db=db).stdout)
    failed = [e for e in events if e["kind"] == "tool_failed"]
    assert failed[0]["error_type"] == "approval_denied"
    assert "worn shoes are not eligible" in failed[0]["message"]
    feedback = [e["feedback"] for e in events if e["kind"] == "feedback_recorded"]
    assert feedback == ["denied"]
    assert not (tmp_path / "data" / "payments.jsonl").exists()


def test_kill_and_unkill_from_the_cli(tmp_path):
    db = str(tmp_path / "b.db")
    assert (
        "kill switch agent:weather set by ops"
        in bosun(
            "kill", "--scope", "agent:weather", "--reason", "bad answers", "--by", "ops", db=db
        ).stdout
    )
    assert "agent:weather" in bosun("killswitches", db=db).stdout
    killed = bosun("run", str(QUICKSTART), "-i", "x", db=db, check=False)
    assert killed.returncode == 1 and "killed" in killed.stdout and "bad answers" in killed.stdout
    bosun("unkill", "--scope", "agent:weather", db=db)
    bosun("run", str(QUICKSTART), "-i", "x", db=db)
    bad = bosun("kill", "--scope", "everything", "--reason", "x", db=db, check=False)
    assert bad.returncode == 2 and "tenant:NAME" in bad.stderr
    exported = bosun("audit", "export", db=db).stdout.splitlines()
    assert [json.loads(line)["action"] for line in exported][:3] == [
        "kill_switch_set",
        "agent_version_registered",  # the first run of a version records its definition
        "run_killed",
    ]


def test_rollback_from_the_cli_reports_missing_undo(tmp_path, demo_env):
    db = str(tmp_path / "b.db")
    parked = bosun("run", str(DEMO_AGENT), "-i", "refund", db=db, env=demo_env, check=False)
    approval_id = json.loads(bosun("approvals", "--json", db=db).stdout)[0]["approval_id"]
    bosun("approve", approval_id, db=db)
    bosun("worker", "--exit-when-idle", "--poll-interval", "0.05", db=db, env=demo_env)
    out = bosun("rollback", run_id_of(parked), db=db, env=demo_env, check=False)
    assert out.returncode == 1  # the demo's tools declare no undo: reported, not skipped
    assert "NO UNDO      send_reply" in out.stdout and "NO UNDO      issue_refund" in out.stdout
    assert out.stdout.index("send_reply") < out.stdout.index("issue_refund")  # newest first


def test_a_failed_run_exits_nonzero_with_the_reason(tmp_path, demo_env):
    db = str(tmp_path / "b.db")
    proc = bosun(
        "run", str(DEMO_AGENT), "-i", "x", "--max-steps", "2", db=db, env=demo_env, check=False
    )
    assert proc.returncode == 1
    assert "limit_exceeded" in proc.stdout and "max_steps" in proc.stdout


def test_submit_then_worker_processes_the_queue(tmp_path):
    db = str(tmp_path / "b.db")
    ids = [bosun("submit", str(QUICKSTART), "-i", f"r{i}", db=db).stdout.strip() for i in range(3)]
    queued = json.loads(bosun("runs", "--json", db=db).stdout)
    assert {r["status"] for r in queued} == {"queued"}
    bosun("worker", "--exit-when-idle", "--poll-interval", "0.05", db=db)
    done = {r["run_id"]: r["status"] for r in json.loads(bosun("runs", "--json", db=db).stdout)}
    assert done == dict.fromkeys(ids, "succeeded")


def test_submit_with_a_key_twice_queues_one_run(tmp_path):
    db = str(tmp_path / "b.db")
    first = bosun("submit", str(QUICKSTART), "-i", "x", "--key", "order-1234", db=db)
    again = bosun("submit", str(QUICKSTART), "-i", "x", "--key", "order-1234", db=db)
    other = bosun("submit", str(QUICKSTART), "-i", "x", "--key", "order-9", db=db)
    assert first.stdout.strip() == again.stdout.strip() != other.stdout.strip()
    runs = json.loads(bosun("runs", "--json", db=db).stdout)
    assert len(runs) == 2
    for r in runs:  # top-level runs: no parent, their own root
        assert r["parent_id"] is None and r["root_id"] == r["run_id"]


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


def test_gc_removes_old_journals_and_keeps_the_summary(tmp_path):
    db = str(tmp_path / "b.db")
    out = json.loads(bosun("run", str(QUICKSTART), "-i", "x", "--json", db=db).stdout)
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


def test_db_defaults_to_bosun_db_env(tmp_path):
    db = str(tmp_path / "from_env.db")
    proc = subprocess.run(
        [sys.executable, "-m", "bosun", "run", str(QUICKSTART), "-i", "x"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "BOSUN_DB": db},
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
    # ...and one call of a tool served by a real MCP server (mcp-server-time, stdio).
    assert "6. A tool from an MCP server" in proc.stdout
    assert 'MCP call: get_current_time({"timezone":"Europe/Lisbon"}) [read]' in proc.stdout


def test_resolve_needs_a_decision(tmp_path):
    db = str(tmp_path / "b.db")
    proc = bosun("resolve", "run_x", db=db, check=False)
    assert proc.returncode == 2 and "--result JSON" in proc.stderr


CARDS = textwrap.dedent(
    '''
    from bosun import Agent, tool

    @tool(effect="write", sensitive=["card_number"])
    def charge_card(card_number: str, amount: float) -> dict:
        """Charge a card."""
        return {"charged": amount}

    agent = Agent(
        name="cards",
        model={"provider": "scripted", "turns": [
            {"tool_calls": [{"name": "charge_card",
                             "arguments": {"card_number": "4111111111111111", "amount": 3}}]},
            {"content": "charged"},
        ]},
        tools=[charge_card],
        policy={"name": "cards", "rules": [{"name": "charges-need-approval",
            "tools": ["charge_card"], "effect": "require_approval", "reason": "money"}]},
    )
    '''
)


def test_approvals_json_has_the_apis_field_names_and_redacts_sensitive_fields(tmp_path):
    db = str(tmp_path / "b.db")
    (tmp_path / "cards.py").write_text(CARDS)
    parked = bosun("run", str(tmp_path / "cards.py"), "-i", "charge", db=db, check=False)
    assert parked.returncode == 1 and "[waiting_approval]" in parked.stdout
    out = bosun("approvals", "--json", db=db).stdout
    [approval] = json.loads(out)
    assert set(approval) == set(Approval.model_fields)  # the API's shape: `approval_id`, ...
    assert approval["approval_id"].startswith("apr_") and approval["tool"] == "charge_card"
    assert approval["arguments"] == {"card_number": "[redacted]", "amount": 3}
    assert "4111111111111111" not in out
    assert approval["status"] == "pending" and approval["tenant"] == "default"


def test_cli_creates_any_role_and_lists_tenants_with_their_counts(tmp_path):
    db = str(tmp_path / "b.db")
    assert bosun("tenants", db=db).stdout.startswith("no tenants yet")
    made = json.loads(
        bosun("keys", "create", "--tenant", "ops", "--role", "platform", "--name", "root",
              "--json", db=db).stdout
    )  # fmt: skip
    assert (made["role"], made["tenant"]) == ("platform", "ops")
    viewer = bosun("keys", "create", "--tenant", "acme", "--role", "viewer", "--name", "v",
                   "--json", db=db)  # fmt: skip
    bosun("keys", "revoke", json.loads(viewer.stdout)["key_id"], db=db)
    bosun("run", str(QUICKSTART), "-i", "Weather?", db=db)  # tenant default
    tenants = json.loads(bosun("tenants", "--json", db=db).stdout)
    assert tenants == [
        {"tenant": "acme", "keys": 0, "revoked_keys": 1, "runs": 0},
        {"tenant": "default", "keys": 0, "revoked_keys": 0, "runs": 1},
        {"tenant": "ops", "keys": 1, "revoked_keys": 0, "runs": 0},
    ]
    table = bosun("tenants", db=db).stdout.splitlines()
    assert table[0].split() == ["TENANT", "KEYS", "REVOKED", "KEYS", "RUNS"]
    assert table[3].split() == ["ops", "1", "0", "0"]


def test_runs_piped_into_head_ends_quietly(tmp_path):
    db = str(tmp_path / "b.db")
    for i in range(3):
        bosun("submit", str(QUICKSTART), "--input", f"weather {i}", db=db)
    script = f"{sys.executable} -m bosun runs --json --db {db} | head -c 10"
    proc = subprocess.run(script, shell=True, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr


def test_after_approving_bosun_resume_finishes_the_run_here(tmp_path, demo_env):
    db = str(tmp_path / "b.db")
    proc = bosun(
        "run", str(DEMO_AGENT), "--input", "Refund order 1234", db=db, env=demo_env, check=False
    )
    assert proc.returncode == 1 and "waiting_approval" in proc.stdout
    run_id = run_id_of(proc)
    assert f"bosun resume {run_id}" in proc.stdout
    refused = bosun("resume", run_id, db=db, env=demo_env, check=False)
    assert refused.returncode == 2 and "waiting for approvals" in refused.stderr
    [approval] = json.loads(bosun("approvals", "--json", db=db).stdout)
    approved = bosun("approve", approval["approval_id"], db=db, env=demo_env).stdout
    assert f"bosun resume {run_id}" in approved
    finished = bosun("resume", run_id, db=db, env=demo_env)
    assert "refund" in finished.stdout.lower()
    assert json.loads(bosun("show", run_id, "--json", db=db).stdout)[-1]["status"] == "succeeded"


def test_show_draws_the_run_tree_and_marks_the_run_shown(tmp_path):
    import asyncio

    from bosun.journal.events import RunStarted
    from bosun.store import RunRecord, open_store

    db = str(tmp_path / "b.db")
    root = bosun("submit", str(QUICKSTART), "-i", "plan", db=db).stdout.strip()

    async def children() -> None:
        store = open_store(db)
        await store.open()
        parent = await store.get_run(root)
        assert parent is not None
        for run_id, parent_id in (("kid-a", root), ("kid-b", root), ("grandkid", "kid-a")):
            child = RunRecord(
                id=run_id, agent="researcher", agent_version=parent.agent_version, input="x",
                spec=parent.spec, parent_id=parent_id, root_id=root,
            )  # fmt: skip
            started = RunStarted(ts=0.0, agent="researcher", agent_version="v", input="x")
            await store.create_run(child, [started])
        await store.close()

    asyncio.run(children())
    out = bosun("show", "grandkid", db=db).stdout
    *tree, total = out[out.index("run tree:") :].splitlines()[1:]
    assert total.startswith("  tree total: 0 steps, 0 tokens")
    assert [line.split()[0] for line in tree] == [root, "kid-a", "grandkid", "kid-b"]
    assert [len(line) - len(line.lstrip()) for line in tree] == [2, 4, 6, 4]
    assert tree[2].endswith("<- this run")
    alone = bosun("submit", str(QUICKSTART), "-i", "solo", db=db).stdout.strip()
    assert "run tree:" not in bosun("show", alone, db=db).stdout
