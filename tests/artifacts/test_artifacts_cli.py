"""`bosun run --attach FILE` and `bosun gc [--older-than] [--dry-run]`, as a user types them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pngs import png

AGENT = """\
name: looker
model:
  provider: scripted
  turns:
    - content: a red square
"""


def bosun(*args: str, db: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "bosun", *args, "--db", db],
        capture_output=True, text=True, timeout=120, env={**os.environ},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc


def test_attach_stores_the_file_beside_the_database_and_gc_keeps_it_while_the_run_is_kept(
    tmp_path: Path,
):
    db = str(tmp_path / "bosun.db")
    (tmp_path / "agent.yaml").write_text(AGENT)
    frame = tmp_path / "frame.png"
    frame.write_bytes(png(5, 5, (255, 0, 0)))
    out = bosun("run", str(tmp_path / "agent.yaml"), "--input", "what is it?",
                "--attach", str(frame), db=db)  # fmt: skip
    assert out.stdout.strip() == "a red square"
    stored = [p for p in (tmp_path / "bosun.db.artifacts").rglob("*") if p.is_file()]
    assert [p.read_bytes() for p in stored] == [frame.read_bytes()]
    kept = bosun("gc", "--older-than", "30d", db=db).stdout
    assert "removed 0 artifacts" in kept and stored[0].exists()
    # Once the run's journal is collected, nothing references the frame.
    dry = bosun("gc", "--older-than", "0s", "--dry-run", db=db).stdout
    assert "would remove 1 artifacts" in dry and "dry run" in dry and stored[0].exists()
    freed = bosun("gc", "--older-than", "0s", db=db).stdout
    assert "removed 1 artifacts" in freed and not stored[0].exists()
