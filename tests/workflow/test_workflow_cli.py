"""`bosun workflow validate|run`, `bosun submit` + `bosun worker` and `bosun task` on the
refund example: what a newcomer pastes from docs/workflows.md."""

from __future__ import annotations

import json
from pathlib import Path

from bosun.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "workflows"
REFUND = str(EXAMPLES / "refund.yaml")


def test_validate_names_file_line_and_field(tmp_path, capsys):
    assert main(["workflow", "validate", REFUND]) == 0
    assert "valid (refund 1.0.0" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "document: {dsl: '1.0.3', namespace: x, name: bad, version: '1.0.0'}\n"
        "do:\n  - s:\n      sett: {a: 1}\n"
    )
    assert main(["workflow", "validate", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}, line 4, `do[0].s.sett`: unknown field; did you mean `set`?" in err


def test_run_the_small_refund_offline(tmp_path, capsys):
    db = str(tmp_path / "b.db")
    code = main(
        ["workflow", "run", REFUND, "--db", db, "--input", f"@{EXAMPLES / 'refund.input.json'}"]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert json.loads(out.splitlines()[0])["path"] == "automatic"


def test_submit_worker_and_answer_the_large_refund(tmp_path, capsys):
    db = str(tmp_path / "b.db")
    large = (EXAMPLES / "refund.large.input.json").read_text()
    assert main(["submit", REFUND, "--db", db, "--input", large]) == 0
    run_id = capsys.readouterr().out.strip()
    assert main(["worker", "--db", db, "--exit-when-idle"]) == 0
    assert main(["task", "list", "--db", db]) == 0
    assert "Approve a large refund" in capsys.readouterr().out
    assert main(["task", "answer", run_id, "--db", db, "--data", '{"approved": 1}']) == 2
    assert "is not of type 'boolean'" in capsys.readouterr().err
    answer = '{"approved": false, "note": "no damage on the photos"}'
    assert main(["task", "answer", run_id, "supervisor", "--db", db, "--data", answer]) == 0
    assert main(["worker", "--db", db, "--exit-when-idle"]) == 0
    capsys.readouterr()
    assert main(["show", run_id, "--db", db]) == 0
    out = capsys.readouterr().out
    assert '"path":"declined"' in out and "no damage on the photos" in out
