"""Issue 12, "Large results": a real MCP server (the SDK, over stdio) answers 10 MB; the
model sees a bounded excerpt, the journal row stays small, and the whole result comes
back byte-identical from `bosun show RUN --call ID --full`. Images stay content parts,
by reference."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from big_server import pattern
from pngs import png

from bosun import Runtime, load_agent
from bosun.journal.events import ToolFinished
from bosun.observe.results import whole_result

HERE = Path(__file__).resolve().parent
SIZE = 10_000_000
LIMIT = 2000


def _agent(tmp_path: Path, turns: str):
    body = f"""
name: big-reader
tools:
  - mcp:
      name: big
      command: {sys.executable}
      args: [{HERE / "big_server.py"}]
      connect_timeout: 60
      max_result_chars: {LIMIT}
    trusted: true
    allow: [big, snapshot]
model:
  provider: scripted
  turns:
{textwrap.indent(textwrap.dedent(turns), "    ")}
"""
    path = tmp_path / "agent.yaml"
    path.write_text(body)
    return load_agent(str(path))


def _bosun(*args: str, db: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "bosun", *args, "--db", db],
        capture_output=True,
        timeout=120,
        env={**os.environ},
        check=True,
    )


@pytest.mark.slow
async def test_a_10_mb_mcp_result_is_an_excerpt_in_a_small_row_and_whole_via_the_cli(
    sqlite_path, tmp_path
):
    agent = _agent(
        tmp_path,
        f"""\
        - tool_calls: [{{id: c1, name: big, arguments: {{size: {SIZE}}}}}]
        - content: done
        """,
    )
    async with Runtime(sqlite_path) as rt:
        result = await rt.run(agent, "read it all")
        events = [e for _, e in await rt.events(result.run_id)]
    assert result.status == "succeeded", result.reason
    [finished] = [e for e in events if isinstance(e, ToolFinished)]
    # What the model saw: the head and tail, with the note.
    assert isinstance(finished.result, str) and len(finished.result) < LIMIT + 300
    assert "characters cut here by Bosun" in finished.result
    assert finished.full is not None and finished.full["bytes"] == SIZE
    # The journal row holds the excerpt and the reference, not the 10 MB.
    with sqlite3.connect(sqlite_path) as conn:
        (size,) = conn.execute(
            "SELECT length(data) FROM events WHERE kind='tool_finished'"
        ).fetchone()
        (blobs,) = conn.execute("SELECT count(*) FROM blobs").fetchone()
    assert size < LIMIT + 1000 and blobs == 0
    whole = _bosun("show", result.run_id, "--call", "c1", "--full", db=sqlite_path).stdout
    assert whole == pattern(SIZE).encode()


async def test_an_mcp_image_is_kept_as_an_artifact_and_stays_a_content_part(db_url, tmp_path):
    agent = _agent(
        tmp_path,
        """\
        - tool_calls: [{id: c1, name: snapshot, arguments: {}}]
        - content: a red yard
        """,
    )
    async with Runtime(db_url) as rt:
        result = await rt.run(agent, "look")
        events = await rt.events(result.run_id)
        [finished] = [e for _, e in events if isinstance(e, ToolFinished)]
        text, image = finished.result
        assert text == {"type": "text", "text": "the yard at noon"}
        assert image["type"] == "image" and image["mime"] == "image/png"
        assert "data" not in image  # by reference: no base64 in the journal
        mime, data = await rt.store.artifact("default", image["artifact"])
        assert (mime, data) == ("image/png", png(4, 4, (200, 10, 10)))
        # An uncut result's whole is the journaled result itself.
        mime, whole = await whole_result(rt.store, "default", events, "c1")
        assert mime == "application/json" and image["artifact"].encode() in whole
