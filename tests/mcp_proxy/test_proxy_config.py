"""proxy.yaml: the same server entries as an agent file's `mcp:`, checked before anything
is served (against the real `mcp-server-time`)."""

from __future__ import annotations

import textwrap

import pytest
from proxy_helpers import ROOT, bosun, time_server

from bosun.errors import SpecError
from bosun.server.mcp_proxy.config import load_proxy


def write(tmp_path, body: str):
    path = tmp_path / "proxy.yaml"
    path.write_text(textwrap.dedent(body))
    return str(path)


def test_two_servers_serving_the_same_tool_name_are_refused_with_the_fix(tmp_path):
    command = time_server()
    path = write(tmp_path, f"""\
        servers:
          - mcp: {{name: here, command: {command}}}
          - mcp: {{name: there, command: {command}}}
    """)  # fmt: skip
    with pytest.raises(SpecError) as err:
        load_proxy(path)
    assert "servers here and there both serve a tool named 'get_current_time'" in str(err.value)
    assert "prefix:" in str(err.value)


def test_a_prefix_tells_them_apart_and_limits_are_only_those_the_file_sets(tmp_path):
    command = time_server()
    path = write(tmp_path, f"""\
        name: two-clocks
        servers:
          - mcp: {{name: here, command: {command}}}
          - mcp: {{name: there, command: {command}}}
            prefix: there_
        limits: {{max_tool_calls: 3}}
    """)  # fmt: skip
    proxy = load_proxy(path)
    names = [t.name for t in proxy.agent.tools]
    assert names == ["get_current_time", "convert_time", "there_get_current_time",
                     "there_convert_time"]  # fmt: skip
    assert proxy.agent.limits.max_tool_calls == 3
    assert proxy.agent.limits.max_steps is None  # one client call is one step: not capped
    assert proxy.agent.name == "two-clocks"


def test_a_typo_in_the_file_names_its_line(tmp_path):
    path = write(
        tmp_path,
        """\
        name: p
        servers:
          - mcp: {command: mcp-server-time}
        aproval_timeout: 5
    """,
    )
    with pytest.raises(SpecError) as err:
        load_proxy(path)
    assert "line 4" in str(err.value) and "aproval_timeout" in str(err.value)


def test_the_example_proxy_file_loads_offline():
    time_server()
    proxy = load_proxy(str(ROOT / "examples" / "mcp" / "proxy.yaml"))
    assert {t.name for t in proxy.agent.tools} == {"get_current_time", "convert_time"}


def test_the_command_refuses_a_missing_file_clearly(tmp_path):
    done = bosun("mcp", "proxy", "--config", str(tmp_path / "nope.yaml"))
    assert done.returncode == 2
    assert "no such file" in done.stderr
