"""The DSL's conformance features (ctk/features/*.feature), run as Bosun runs.

Every scenario of the vendored CTK is read from its file: those using constructs Bosun
runs execute through a real Runtime on SQLite (their petstore/httpbin calls go to a real
HTTP server on 127.0.0.1), and their `Then` steps are checked; those using constructs
Bosun does not support (`call: openapi`) must be refused by validation, naming the task.
"""

from __future__ import annotations

import glob
import json
import os

import pytest
import yaml
from workflow_gherkin import Scenario, scenarios

from bosun import Runtime
from bosun.errors import SpecError
from bosun.workflow import build
from bosun.workflow.runs import fault_of, view

CTK = os.path.join(
    os.path.dirname(__file__),
    "..",
    "..",
    "..",
    "shared",
    "vendor",
    "serverless-workflow",
    "ctk",
    "features",
)
CTK = os.environ.get("BOSUN_CTK_FEATURES") or (
    CTK if os.path.isdir(CTK) else "/work/shared/vendor/serverless-workflow/ctk/features"
)
ALL = [s for f in sorted(glob.glob(os.path.join(CTK, "*.feature"))) for s in scenarios(f)]
UNSUPPORTED = ("call: openapi",)


def _get(value, dotted: str):
    for part in dotted.split("."):
        assert isinstance(value, dict) and part in value, f"no property {dotted!r} in {value!r}"
        value = value[part]
    return value


def test_the_kit_was_read():
    assert len(ALL) >= 20, f"expected the CTK's scenarios under {CTK}"


@pytest.mark.parametrize("scenario", ALL, ids=[f"{s.feature}: {s.name}" for s in ALL])
async def test_scenario(scenario: Scenario, tmp_path, http_base):
    definition = next(s.doc for s in scenario.steps if "workflow with definition" in s.text)
    given = next((s.doc for s in scenario.steps if "input is" in s.text), None)
    data = yaml.safe_load(given) if given else {}
    text = definition.replace("https://petstore.swagger.io", http_base).replace(
        "https://httpbin.org", http_base
    )
    if any(u in text for u in UNSUPPORTED):
        with pytest.raises(SpecError, match="is not supported"):
            build(text, "ctk.yaml")
        return
    wf = build(text, "ctk.yaml")
    async with Runtime(str(tmp_path / "ctk.db")) as rt:
        result = await rt.run(wf.agent, json.dumps(data))
        seen = view(wf.agent, result.run_id, await rt.events(result.run_id))
    order = [p.rsplit("/", 1)[1] for p in seen.path]
    output = json.loads(result.output) if result.output else None
    for step in scenario.steps:
        t = step.text
        if t.startswith("the workflow should complete"):
            assert result.status == "succeeded", result.reason
            if "with output" in t:
                assert output == yaml.safe_load(step.doc)
        elif t.startswith("the workflow should fault"):
            assert result.status == "failed", result.reason
            if "with error" in t:
                error = fault_of(result.reason)
                assert error is not None, result.reason
                for key, value in yaml.safe_load(step.doc).items():
                    assert error.get(key) == value, (key, error)
        elif t.startswith("the workflow output should have properties"):
            for name in [p.strip(" '") for p in t.split("properties", 1)[1].split(",")]:
                _get(output, name)
        elif t.startswith("the workflow output should have a") and "containing" in t:
            name = t.split("'")[1]
            count = int(t.split("containing")[1].split()[0])
            assert len(_get(output, name)) == count
        elif t.startswith("the workflow output should have a"):
            name = t.split("'")[1]
            assert _get(output, name) == yaml.safe_load(step.doc)
        elif t.endswith("should run first"):
            assert order[0] == t.split()[0], order
        elif t.endswith("should run last"):
            assert order[-1] == t.split()[0], order
        elif " should run after " in t:
            later, earlier = t.split()[0], t.split()[-1]
            assert order.index(later) > order.index(earlier), order
        else:
            assert t.startswith(("a workflow", "given the", "the workflow is executed")), t
