"""The support-team example, exactly as docs/teams.md and the issue give its command:
`bosun run examples/support-team/agent.yaml --input "..."` (a subprocess; the database
chosen by $BOSUN_DB, both stores). triage hands the conversation to refunds, whose refund
above the cap the qa reviewer vetoes; the veto is on `bosun show`'s timeline and the
customer gets refunds' answer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REQUEST = "My order 1234 arrived broken, I want a refund."

pytestmark = pytest.mark.slow


def bosun(*args: str, db: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BOSUN_DB": db}
    return subprocess.run(
        [sys.executable, "-m", "bosun", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_support_team_example_vetoes_the_refund_above_the_cap(db_url):
    done = bosun("run", "examples/support-team/agent.yaml", "--input", REQUEST, db=db_url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "above what I can approve on my own" in done.stdout  # refunds' answer, as triage's

    runs = json.loads(bosun("runs", "--json", db=db_url).stdout)
    by_agent = {r["agent"]: r for r in runs}
    assert set(by_agent) == {"triage", "refunds", "qa"}
    assert all(r["status"] == "succeeded" for r in runs)

    root = bosun("show", by_agent["triage"]["run_id"], db=db_url).stdout
    assert "HANDOFF  triage -> refunds" in root
    assert "refunds: issue_refund VETOED by reviewer qa" in root  # the tree's team story
    specialist = bosun("show", by_agent["refunds"]["run_id"], db=db_url).stdout
    assert "review  issue_refund sent to reviewer qa" in specialist
    assert "review  issue_refund VETOED by reviewer qa: the refund of 249.00 is above" in specialist
    assert "error   issue_refund (vetoed)" in specialist
    assert "blocked (not executed)" in specialist
