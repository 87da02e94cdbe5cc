"""Fuzzing the agent-file and policy-file loaders (fixed seeds: the same examples every run).

The property a user relies on: whatever a file holds, loading it either works or raises a
`SpecError` whose message names the file and a line. Never another exception (a traceback
instead of an answer), never a hang (hypothesis' deadline fails a slow example, and an alarm
interrupts one that would never finish), and an agent that loads can be pinned (its snapshot
is JSON a journal can hold).

Two kinds of input: random YAML-ish text (tokens, odd unicode, NUL, lone surrogates, raw
bytes), and structured mutations of valid documents (wrong types, unknown and misspelt
fields, deleted fields, aliases, deep nesting, huge scalars) written out as YAML.
"""

from __future__ import annotations

import contextlib
import copy
import re
import signal
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bosun import load_agent
from bosun.errors import SpecError
from bosun.govern.policy import Policy

FUZZ = settings(
    derandomize=True,  # fixed examples, the same on every run and machine
    database=None,
    max_examples=80,
    deadline=timedelta(seconds=5),  # an example that hangs fails, it does not stall the suite
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

TOOLS = '''
from bosun import tool

@tool(effect="read", idempotent=True)
def lookup(order_id: str) -> dict:
    """Find an order."""
    return {"order_id": order_id}

def plain(x: int) -> int:
    """A plain function of the agent's own file."""
    return x

def undo_plain(arguments: dict, result: object) -> None:
    return None
'''

VALID_POLICY: dict[str, Any] = {
    "name": "support",
    "version": 2,
    "rules": [
        {
            "name": "big-refunds",
            "tools": ["refund"],
            "when": "args.amount > 50",
            "effect": "require_approval",
            "approver_role": "supervisor",
            "expires_after": 3600,
        },
        {"name": "no-irreversible", "effects": ["irreversible"], "effect": "deny"},
    ],
    "visibility": {"support": ["lookup", "refund"]},
    "default_effect": "allow",
    "include_defaults": True,
}

VALID_AGENT: dict[str, Any] = {
    "name": "support",
    "version": "1",
    "instructions": "Be brief.",
    "model": {
        "provider": "scripted",
        "turns": [
            {"tool_calls": [{"name": "lookup", "arguments": {"order_id": "1"}}]},
            {"content": "done"},
        ],
    },
    "tools": [
        "tools.py:lookup",
        {
            "ref": "tools:plain",
            "effect": "read",
            "idempotent": True,
            "undo": "tools.py:undo_plain",
            "retry": {"max_attempts": 2},
        },
    ],
    "limits": {"max_steps": 5, "max_cost": 0.5},
    "policy": "policy.yaml",
    "autonomy": "auto",
    "tool_autonomy": {"lookup": "suggest"},
    "rate_limits": [{"tools": ["look*"], "per": "tool", "limit": 3, "window_seconds": 60}],
    "allow_external_tools": ["os.path:basename"],
}

ODD_CHARACTERS = ["\x00", "\ufeff", "\r", "\t", "\x85", "\u2028", "\x1b", "é", "🙂", "\\"]
characters = st.one_of(
    st.characters(),
    st.characters(categories=["Cs"]),  # lone surrogates
    st.sampled_from(ODD_CHARACTERS),
)
odd_text = st.text(alphabet=characters, max_size=12)

REFS = [
    "tools.py:lookup",
    "tools:plain",
    "tools.py:nope",
    "nope.py:x",
    "os:system",
    "subprocess:run",
    "builtins:eval",
    "shutil:rmtree",
    "os.path:basename",
    "json:loads",
    "tools.py:__builtins__",
    "../tools.py:lookup",
    "tools.py:lookup.fn.__globals__",
    ":",
    "a:b:c",
]

TOKENS = [
    "name: a\n",
    "name:",
    "tools:",
    "- ",
    "  ",
    "\n",
    ": ",
    "[",
    "]",
    "{",
    "}",
    ", ",
    "&a ",
    "*a",
    "&b ",
    "*b",
    "<<: *a",
    "!!python/object/apply:os.system ",
    "!!binary ",
    "!!timestamp ",
    "!!int ",
    "!foo ",
    "'",
    '"',
    '"\\ud800"',
    '"\\0"',
    "# c\n",
    "|\n",
    ">-\n",
    "? ",
    "---\n",
    "...\n",
    "%YAML 1.1\n",
    "limits:",
    "max_steps: ",
    "model: ",
    "provider: scripted",
    "turns:",
    "rules:",
    "effect: deny",
    "when: ",
    "args.amount > ",
    "visibility:",
    "-1",
    "1e999",
    ".nan",
    "2024-01-01",
    "12345678901234567890123",
    "~",
    "yes",
    "0x1F",
    *REFS,
]

yaml_ish = st.lists(st.one_of(st.sampled_from(TOKENS), odd_text), max_size=40).map("".join)


def nested(depth: int) -> Any:
    value: Any = "deep"
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


weird_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    odd_text,
    st.sampled_from(REFS),
    st.sampled_from(["read", "write", "deny", "allow", "auto", "scripted", "openai:gpt-4o"]),
    st.lists(odd_text, max_size=3),
    st.dictionaries(odd_text, odd_text, max_size=3),
    st.integers(min_value=40, max_value=90).map(nested),
    st.just("x" * 100_000),
)


def _containers(doc: Any, path: tuple = ()) -> list[tuple]:
    """Every path to a dict or list in `doc`."""
    out = []
    if isinstance(doc, dict | list):
        out.append(path)
        items = doc.items() if isinstance(doc, dict) else enumerate(doc)
        for key, value in items:
            out.extend(_containers(value, (*path, key)))
    return out


def _at(doc: Any, path: tuple) -> Any:
    for key in path:
        doc = doc[key]
    return doc


def _typo(word: str, draw: Any) -> str:
    i = draw(st.integers(min_value=0, max_value=max(len(word) - 1, 0)))
    kind = draw(st.sampled_from(["drop", "double", "swap", "suffix"]))
    if kind == "drop":
        return word[:i] + word[i + 1 :] or "x"
    if kind == "double":
        return word[: i + 1] + word[i:]
    if kind == "swap" and i + 1 < len(word):
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    return word + "s"


@st.composite
def mutated(draw: Any, base: dict[str, Any]) -> str:
    """`base` with a few structural mutations, as YAML text (maybe mangled further)."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        path = draw(st.sampled_from(_containers(doc)))
        target = _at(doc, path)
        op = draw(st.sampled_from(["replace", "unknown", "typo", "delete"]))
        if isinstance(target, dict) and target:
            key = draw(st.sampled_from(sorted(target)))
            if op == "replace":
                target[key] = draw(weird_values)
            elif op == "delete":
                del target[key]
            elif op == "typo":
                target[_typo(key, draw)] = target.pop(key)
            else:
                target[draw(odd_text)] = draw(weird_values)
        elif isinstance(target, list) and target:
            index = draw(st.integers(min_value=0, max_value=len(target) - 1))
            if op == "delete":
                del target[index]
            else:
                target[index] = draw(weird_values)
    text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, width=10_000)
    mangle = draw(st.sampled_from(["none", "none", "laughs", "alias", "insert", "truncate"]))
    if mangle == "laughs":
        laughs = "lol0: &lol0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
            f"lol{i}: &lol{i} [{', '.join([f'*lol{i - 1}'] * 9)}]\n" for i in range(1, 9)
        )
        text = text + laughs
    elif mangle == "alias":
        lines = text.splitlines()
        i = draw(st.integers(min_value=0, max_value=len(lines) - 1))
        lines[i] = lines[i].replace(": ", ": &a ", 1)
        text = "\n".join(lines) + "\nextra: [*a, *a, *a]\n"
    elif mangle in ("insert", "truncate"):
        i = draw(st.integers(min_value=0, max_value=len(text)))
        text = (
            text[:i] + draw(odd_text)
            if mangle == "truncate"
            else text[:i] + draw(odd_text) + text[i:]
        )
    return text


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fuzz")
    (path / "tools.py").write_text(TOOLS)
    (path / "policy.yaml").write_text(yaml.safe_dump(VALID_POLICY))
    return path


def as_bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")  # a lone surrogate makes invalid UTF-8


def names_file_and_line(exc: SpecError, what: str) -> None:
    message = str(exc)
    assert re.search(re.escape(what) + r", line \d+", message), message


class Hang(BaseException):  # not an Exception: no `except Exception` in the loader hides it
    pass


@contextlib.contextmanager
def hang_guard(seconds: float = 15) -> Iterator[None]:
    """Interrupt a load that would never finish (the deadline only judges finished ones)."""

    def expired(signum: int, frame: object) -> None:
        raise Hang(f"still loading after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def check_agent(folder: Path, data: bytes) -> None:
    path = folder / "agent.yaml"
    path.write_bytes(data)
    try:
        with hang_guard():
            agent = load_agent(str(path))
    except SpecError as exc:
        names_file_and_line(exc, f"agent file {path}")
        return
    assert agent.version_id  # the snapshot is JSON: the journal can pin it


def check_policy(folder: Path, data: bytes) -> None:
    path = folder / "policy-fuzz.yaml"
    path.write_bytes(data)
    try:
        with hang_guard():
            Policy.from_file(str(path))
    except SpecError as exc:
        names_file_and_line(exc, f"policy file {path}")


def test_the_valid_documents_load(folder):
    check_agent(folder, as_bytes(yaml.safe_dump(VALID_AGENT)))
    assert load_agent(str(folder / "agent.yaml")).tool_map.keys() == {"lookup", "plain"}
    assert Policy.from_file(str(folder / "policy.yaml")).name == "support"


@FUZZ
@given(text=yaml_ish, raw=st.binary(max_size=16))
def test_random_text_loads_or_names_file_and_line(folder, text, raw):
    check_agent(folder, as_bytes(text))
    check_policy(folder, as_bytes(text))
    check_agent(folder, raw + as_bytes(text))
    try:
        with hang_guard():
            Policy.from_yaml(text, "text.yaml")  # text as given, lone surrogates and all
    except SpecError as exc:
        names_file_and_line(exc, "policy file text.yaml")


@FUZZ
@given(text=mutated(VALID_AGENT))
def test_mutated_agent_files_load_or_name_file_and_line(folder, text):
    check_agent(folder, as_bytes(text))


@FUZZ
@given(text=mutated(VALID_POLICY))
def test_mutated_policy_files_load_or_name_file_and_line(folder, text):
    check_policy(folder, as_bytes(text))
