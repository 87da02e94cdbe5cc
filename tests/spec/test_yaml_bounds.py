"""Agent and policy files are read within fixed bounds: a broken or hostile file fails fast
with an error naming the file and line, it never hangs `bosun run` or a worker."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bosun import load_agent
from bosun.errors import SpecError
from bosun.govern.policy import Policy
from bosun.spec import yaml_lines

# Nine levels of nine aliases: about 400 million values once expanded.
LAUGHS = 'lol0: &lol0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"lol{i}: &lol{i} [{', '.join([f'*lol{i - 1}'] * 9)}]\n" for i in range(1, 9)
)


def load_both(tmp_path: Path, body: str | bytes) -> list[str]:
    """The errors loading `body` as an agent file and as a policy file give."""
    messages = []
    for kind, load in (("agent", load_agent), ("policy", Policy.from_file)):
        path = tmp_path / f"{kind}.yaml"
        if isinstance(body, bytes):
            path.write_bytes(body)
        else:
            path.write_text(body, encoding="utf-8")
        with pytest.raises(SpecError) as err:
            load(str(path))
        assert f"{kind} file {path}, line " in str(err.value)
        messages.append(str(err.value))
    return messages


def test_a_billion_laughs_document_is_refused_in_bounded_time(tmp_path):
    started = time.monotonic()
    for message in load_both(tmp_path, "name: a\n" + LAUGHS):
        assert "aliases here expand to more than 50,000 values" in message
    assert time.monotonic() - started < 10  # a generous bound; it takes well under a second


def test_an_alias_inside_its_own_anchor_is_refused(tmp_path):
    for message in load_both(tmp_path, "name: a\nrules: &r [*r]\n"):
        assert "line 2: nested more than 64 levels deep" in message


def test_too_many_aliases_are_refused_at_the_alias_that_is_one_too_many(tmp_path):
    body = "name: a\nx: &x 1\n" + "".join(f"y{i}: *x\n" for i in range(101))
    for message in load_both(tmp_path, body):
        assert "line 103: more than 100 aliases" in message


@pytest.mark.parametrize(
    ("depth", "words"),
    [(100, "nested more than 64 levels deep"), (100_000, "exceeded maximum nesting depth")],
)
def test_deep_nesting_is_refused(tmp_path, depth, words):
    for message in load_both(tmp_path, "name: a\ninstructions: " + "[" * depth + "]" * depth):
        assert ".yaml, line 2: " in message and words in message


def test_a_file_over_the_size_limit_is_refused_before_it_is_parsed(tmp_path):
    body = "name: a\ninstructions: '" + "x" * yaml_lines.MAX_BYTES + "'\n"
    for message in load_both(tmp_path, body):
        assert "larger than 1024 KiB, the limit for agent and policy files" in message


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"name: a\ninstructions: \xff\xfe\n", "line 2: not UTF-8 text"),
        ("name: a\ninstructions: x\x00y\n", "line 2: invalid YAML: unacceptable character #x0000"),
        ("name: a\nlimits: {max_steps: 1}\nlimits: {}\n", "`limits` is given twice"),
        ("name: a\nx: !!python/object/apply:os.system [ls]\n", "tag !!python/object"),
        ("name: a\nx: !!binary aGVsbG8=\n", "binary values are not supported"),
        ("name: a\n? [k]\n: v\n", "a key must be plain text"),
        ("name: a\nversion: 123456789012345678901234567890\n", "does not fit in 64 bits"),
    ],
)
def test_odd_documents_get_an_error_naming_the_line(tmp_path, body, words):
    for message in load_both(tmp_path, body):
        assert words in message


def test_a_lone_surrogate_in_policy_text_is_refused():
    with pytest.raises(SpecError, match=r"policy file p.yaml, line 2: invalid character"):
        Policy.from_yaml("name: p\nrules: [\ud800]\n", "p.yaml")


def test_a_timestamp_stays_the_text_it_was_written_as(tmp_path):
    path = tmp_path / "agent.yaml"
    path.write_text("name: a\nversion: 2024-01-31\nmodel: scripted\n")
    agent = load_agent(str(path))
    assert agent.version == "2024-01-31"
    assert agent.version_id.startswith("a@2024-01-31+")
