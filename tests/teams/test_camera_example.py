"""`examples/camera/`: the command its README starts with runs offline and decides each
frame by policy (police at once, the overseer's approval, logged), every decision
traceable to its frame's artifact."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

from bosun import Runtime
from bosun.journal.calls import calls
from bosun.journal.events import RunStarted
from bosun.spec.media import digest_of

ROOT = Path(__file__).resolve().parents[2]
CAMERA = ROOT / "examples" / "camera"


def readme_command(db: str) -> list[str]:
    first = (CAMERA / "README.md").read_text().split("```sh\n", 1)[1].split("\n", 1)[0]
    words = shlex.split(first)
    assert words[0] == "python" and "--db" in words, first
    words[words.index("--db") + 1] = db
    return [sys.executable, *words[1:]]


async def test_the_readme_command_decides_each_frame_by_policy_traceably(tmp_path):
    db = str(tmp_path / "camera.db")
    proc = subprocess.run(
        readme_command(db), cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = dict(line.split("  ", 1) for line in proc.stdout.strip().splitlines())
    assert "logged" in lines["01-empty-yard.png"]
    assert "police alerted (case P-" in lines["02-intruder-with-crowbar.png"]
    assert "waiting for the overseer (bosun approve apr_" in lines["03-figure-at-the-fence.png"]
    assert "logged" in lines["04-cat-on-the-wall.png"]

    async with Runtime(db) as rt:
        roots = [r for r in await rt.store.list_runs(limit=100) if r.agent == "extractor"]
        assert len(roots) == 4
        decided = {}
        for root in roots:
            [started] = [e for _, e in await rt.events(root.id) if isinstance(e, RunStarted)]
            [frame] = started.attachments  # the journal holds the reference, not the bytes
            name = frame["name"]
            assert frame["artifact"] == digest_of((CAMERA / "frames" / name).read_bytes())
            mime, data = await rt.store.artifact(root.tenant, frame["artifact"])
            assert (mime, data) == ("image/png", (CAMERA / "frames" / name).read_bytes())
            [child] = [r for r in await rt.store.list_runs(root_id=root.id) if r.id != root.id]
            [call] = calls(await rt.events(child.id))
            assert f'"frame":"{frame["artifact"]}"' in call.arguments  # traceable to its frame
            decided[name] = (
                call.tool,
                str(call.outcome),
                call.decision.rule if call.decision else None,
            )
    assert decided == {
        "01-empty-yard.png": ("log_frame", "done", "default"),
        "02-intruder-with-crowbar.png": (
            "alert_police", "done", "clear-threat-calls-the-police-at-once",
        ),
        "03-figure-at-the-fence.png": (
            "alert_police", "waiting", "ambiguous-threat-goes-to-the-overseer",
        ),
        "04-cat-on-the-wall.png": ("log_frame", "done", "default"),
    }  # fmt: skip
