"""What a tool reference may name, and that a worker can import it again from anywhere.

An agent file is trusted code, but a reference must still name a `@tool`, or a plain
function of the agent's own files: `os:system` is refused unless the agent allows it by
name. Every reference is checked when the agent is loaded or registered, not when a
worker first needs it, and references into the agent's folder are pinned as file paths.
"""

from __future__ import annotations

import asyncio
import os
import textwrap
from pathlib import Path

import pytest

from bosun import Agent, Runtime, load_agent, tool
from bosun.errors import SpecError

TOOLS = '''
from shutil import rmtree  # imported here, defined in the standard library

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

def make_lookup():
    def inner(order_id: str) -> dict:
        """Made by a factory."""
        return {"order_id": order_id}
    return inner

made = tool(effect="read")(make_lookup())

class Helper:
    pass
'''


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def agent_file(folder: Path, tools: str, extra: str = "") -> str:
    write(folder, "tools.py", TOOLS)
    body = f"name: a\nmodel: scripted\ntools:\n{textwrap.indent(tools.strip(), '  ')}\n{extra}"
    return str(write(folder, "agent.yaml", body))


@pytest.mark.parametrize(
    ("ref", "what"),
    [
        ("os:system", "built-in function"),
        ("subprocess:run", "standard library"),
        ("builtins:eval", "built-in function"),
        ("shutil:rmtree", "standard library"),
        ("tools.py:rmtree", "shutil.rmtree, imported into that file"),
        ("tools.py:Helper", "a class"),
    ],
)
def test_a_reference_to_a_function_that_is_not_a_tool_is_refused(tmp_path, ref, what):
    path = agent_file(tmp_path, f"- {ref}")
    with pytest.raises(SpecError) as err:
        load_agent(path)
    message = str(err.value)
    assert message.startswith(f"agent file {path}, line 4: `tools[0]`: `{ref}` is ")
    assert what in message
    # ... and it says what to write instead.
    assert "decorate your function with `@tool`" in message
    assert f"list `{ref}` under `allow_external_tools`" in message


def test_allow_external_tools_lets_a_named_library_function_through(tmp_path):
    path = agent_file(
        tmp_path,
        "- {ref: 'os.path:basename', effect: read}",
        "allow_external_tools: ['os.path:basename']\n",
    )
    agent = load_agent(path)
    assert agent.tool_map["basename"].fn is os.path.basename
    # A worker rebuilding the pinned version applies the same allow-list.
    rebuilt = Agent.from_snapshot(agent.snapshot())
    assert "basename" in rebuilt.tool_map and not rebuilt.unavailable_tools


def test_undo_references_follow_the_same_rule(tmp_path):
    bad = agent_file(tmp_path, "- {ref: tools.py:lookup, undo: 'shutil:rmtree'}")
    with pytest.raises(SpecError, match=r"line 4: `tools\[0\]`: `shutil:rmtree` is a function"):
        load_agent(bad)
    good = agent_file(tmp_path, "- {ref: tools.py:lookup, undo: 'tools:undo_plain'}")
    agent = load_agent(good)
    assert agent.tool_map["lookup"].undo == f"{tmp_path / 'tools.py'}:undo_plain"


def test_plain_functions_of_the_agents_own_files_are_tools(tmp_path):
    agent = load_agent(agent_file(tmp_path, "- tools.py:plain\n- tools:lookup"))
    assert set(agent.tool_map) == {"plain", "lookup"}


def test_a_worker_refuses_a_pinned_reference_that_is_not_a_tool(tmp_path):
    agent = load_agent(agent_file(tmp_path, "- tools.py:lookup"))
    snapshot = agent.snapshot()
    tampered = {**snapshot, "tools": [{**snapshot["tools"][0], "ref": "shutil:rmtree"}]}
    rebuilt = Agent.from_snapshot(tampered)
    assert "lookup" not in rebuilt.tool_map
    assert "is a function of the standard library" in rebuilt.unavailable_tools["lookup"]


def test_a_python_agent_string_reference_is_checked_too(tmp_path):
    with pytest.raises(SpecError) as err:
        Agent(name="a", model="scripted", tools=["os:system"])
    line = test_a_python_agent_string_reference_is_checked_too.__code__.co_firstlineno + 2
    assert str(err.value).startswith(f"tests/spec/test_tool_refs.py, line {line}: `tools`: ")
    assert "`os:system` is a built-in function" in str(err.value)


def test_a_tool_made_by_a_factory_is_refused_when_the_file_is_loaded(tmp_path):
    path = agent_file(tmp_path, "- tools.py:made")
    with pytest.raises(SpecError) as err:
        load_agent(path)
    assert "line 4: `tools[0]`: tool `inner` is defined inside function `make_lookup()`" in str(
        err.value
    )
    assert "define it at module level" in str(err.value)


async def test_registering_an_agent_whose_tool_a_worker_cannot_import_is_refused(tmp_path):
    @tool(effect="read")
    def local() -> str:
        """Defined inside a test function."""
        return "x"

    lam = tool(name="lam", effect="read")(lambda: "y")
    async with Runtime(str(tmp_path / "bosun.db")) as rt:
        for bad, words in ((local, "defined inside function"), (lam, "is a lambda")):
            agent = Agent(name="a", model="scripted", tools=[bad])
            with pytest.raises(SpecError, match=words) as err:
                await rt.submit(agent, "hi")
            assert "define it at module level" in str(err.value)
            with pytest.raises(SpecError, match=words):
                await rt.run(agent, "hi")
        assert await rt.store.list_runs() == []  # nothing was queued


async def test_a_library_function_given_directly_in_python_needs_the_allow_list(tmp_path):
    async with Runtime(str(tmp_path / "bosun.db")) as rt:
        refused = Agent(name="a", model="scripted", tools=[os.path.basename])
        with pytest.raises(SpecError, match="a function of the standard library"):
            await rt.submit(refused, "hi")
        allowed = Agent(
            name="a",
            model="scripted",
            tools=[os.path.basename],
            allow_external_tools=["os.path:basename"],
        )
        assert await rt.submit(allowed, "hi")


def test_module_references_are_found_in_the_agents_folder_and_pinned_by_path(tmp_path, monkeypatch):
    project = tmp_path / "project"
    write(project, "helpers.py", TOOLS)
    write(project, "pkg/__init__.py", "")
    write(project, "pkg/db.py", "ROWS = {'1': 'shoes'}\n")
    write(
        project,
        "pkg/orders.py",
        '''
        from bosun import tool
        from .db import ROWS  # a relative import: pkg is a package

        @tool(effect="read")
        def find(order_id: str) -> str:
            """Find an order."""
            return ROWS[order_id]
        ''',
    )
    path = write(project, "agent.yaml", "name: a\ntools: [helpers:lookup, pkg.orders:find]\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    agent = load_agent(str(path))
    refs = {t.name: t.ref for t in agent.tools}  # type: ignore[union-attr]
    assert refs == {
        "lookup": f"{project / 'helpers.py'}:lookup",
        "find": f"{project / 'pkg' / 'orders.py'}:find",
    }
    rebuilt = Agent.from_snapshot(agent.snapshot())
    assert rebuilt.unavailable_tools == {}
    assert asyncio.run(_call(rebuilt, "find", order_id="1")) == "shoes"


async def _call(agent: Agent, name: str, **arguments: object) -> object:
    return agent.tool_map[name](**arguments)
