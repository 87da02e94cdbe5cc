"""A mistake in a Python agent reads like one in YAML: the file, the line, the field, and a
"did you mean" for a misspelt field; `bosun run` prints it without a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import bosun
from bosun import Agent, Limits
from bosun.errors import SpecError
from bosun.govern.policy import Policy

HERE = "tests/spec/test_newcomer_errors.py"


def line_of(marker: str) -> int:
    """The line of this file holding `marker` (the call an error should point at)."""
    lines = Path(__file__).read_text().splitlines()
    return next(i for i, text in enumerate(lines, 1) if marker in text and "line_of" not in text)


def test_a_bad_limits_value_names_the_file_line_and_field():
    with pytest.raises(SpecError) as err:
        Agent(name="x", limits=Limits(max_steps="ten"))  # marker: limits-ten
    assert str(err.value) == (
        f"{HERE}, line {line_of('marker: limits-ten')}: `limits.max_steps`: input should be a "
        "valid integer, unable to parse string as an integer, got 'ten'"
    )
    assert isinstance(err.value, ValueError)  # as pydantic's own error is: `except` still works


def test_a_misspelt_limit_in_a_dict_gets_a_did_you_mean():
    with pytest.raises(SpecError) as err:
        Agent(name="x", limits={"max_stepz": 3})  # marker: stepz
    assert str(err.value) == (
        f"{HERE}, line {line_of('marker: stepz')}: `limits.max_stepz`: unknown field; "
        "did you mean `max_steps`?"
    )


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"autonomy": "automatic"}, "`autonomy`: 'automatic' is not an autonomy level; did you"),
        ({"model": "gpt-4o"}, "`model`: 'gpt-4o': write it as `provider:name`"),
        ({"model": {"provider": "scripted", "turnz": []}}, "`model.turnz`: unknown field"),
        ({"rate_limits": [{"limit": 0}]}, "`rate_limits[0].limit`: input should be greater"),
        ({"tool_autonomy": {"t": "never"}}, "`tool_autonomy.t`: 'never' is not an autonomy"),
    ],
)
def test_other_agent_mistakes_name_the_line_of_the_agent_call(options, words):
    with pytest.raises(SpecError) as err:
        Agent(name="x", **options)  # marker: agent-call
    assert str(err.value).startswith(f"{HERE}, line {line_of('marker: agent-call')}: ")
    assert words in str(err.value)


def test_policy_documents_suggest_the_field_that_was_meant():
    with pytest.raises(SpecError) as err:
        Policy.from_dict({"name": "p", "rules": [{"name": "r", "effect": "deny", "tool": "x"}]})
    assert "policy: `rules[0].tool`: unknown field; did you mean `tools`?" in str(err.value)
    with pytest.raises(SpecError, match=r"line 2: `defaults_effect`: .* did you mean"):
        Policy.from_yaml("name: p\ndefaults_effect: deny\n")


def bosun_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    src = str(Path(bosun.__file__).parents[1])
    env = {**os.environ, "PYTHONPATH": src}
    return subprocess.run(
        [sys.executable, "-m", "bosun", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_bosun_run_prints_a_python_agent_mistake_as_an_error_without_a_traceback(tmp_path):
    (tmp_path / "agent.py").write_text(
        textwrap.dedent(
            """
            from bosun import Agent, Limits

            agent = Agent(
                name="x",
                model="scripted",
                limits=Limits(max_steps="ten"),
            )
            """
        )
    )
    done = bosun_cli("run", "agent.py", "--input", "hi", "--db", "bosun.db", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == (
        "error: agent.py, line 7: `limits.max_steps`: input should be a valid integer, "
        "unable to parse string as an integer, got 'ten'\n"
    )


def test_bosun_version(tmp_path):
    done = bosun_cli("--version", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (0, f"bosun {bosun.__version__}\n")
