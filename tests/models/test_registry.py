"""An open provider registry: a provider registered by name is usable from YAML and from
Python without editing any factory, and a misspelt provider gets a suggestion."""

from __future__ import annotations

import textwrap

import pytest

from bosun import Agent, ModelSpec, Runtime, load_agent
from bosun.errors import SpecError
from bosun.models.base import ModelRequest, ModelResponse, Usage
from bosun.models.registry import build_provider, register_provider
from bosun.spec.providers import check_provider, is_offline, provider_names


class EchoProvider:
    """Answers with the last user message, upper-cased: offline, deterministic."""

    provider = "echo"

    def __init__(self, spec: ModelSpec):
        self.model = spec.name

    async def complete(self, request: ModelRequest) -> ModelResponse:
        asked = [m["content"] for m in request.messages if m["role"] == "user"][-1]
        return ModelResponse(asked.upper(), (), Usage(3, 2), self.model, "stop")


def build_echo(spec: ModelSpec) -> EchoProvider:
    return EchoProvider(spec)


register_provider("echo", build_echo, offline=True)


def test_the_built_ins_are_registered_like_any_other():
    assert provider_names()[:5] == ("openai", "scripted", "sim", "anthropic", "gemini")
    assert is_offline("sim") and is_offline("scripted") and not is_offline("openai")
    assert "echo" in provider_names() and is_offline("echo")


def test_a_registered_provider_is_built_by_name_with_its_offline_default_name():
    spec = ModelSpec(provider="echo")
    assert spec.name == "echo"  # offline: named after the provider, not "gpt-4o-mini"
    provider = build_provider(spec)
    assert isinstance(provider, EchoProvider)
    fallback = build_provider(ModelSpec(provider="openai", fallbacks=(spec,)))
    assert [name for name, _ in fallback.providers][-1] == "echo:default:echo"


async def test_a_registered_provider_runs_an_agent_written_in_python(tmp_path):
    agent = Agent(name="echoer", model="echo:shout")
    async with Runtime(str(tmp_path / "bosun.db")) as rt:
        result = await rt.run(agent, "hello")
    assert (result.status, result.output) == ("succeeded", "HELLO")


async def test_a_registered_provider_runs_an_agent_written_in_yaml(tmp_path):
    path = tmp_path / "agent.yaml"
    path.write_text("name: echoer\nmodel:\n  provider: echo\n")
    agent = load_agent(str(path))
    assert agent.model_spec.provider == "echo" and agent.model_spec.name == "echo"
    async with Runtime(str(tmp_path / "bosun.db")) as rt:
        result = await rt.run(agent, "from yaml")
        run = await rt.get_run(result.run_id)
    assert (result.status, result.output) == ("succeeded", "FROM YAML")
    assert Agent.from_snapshot(run.spec).model_spec.provider == "echo"  # a worker rebuilds it


def test_a_misspelt_provider_in_yaml_names_the_line_and_suggests_the_name(tmp_path):
    path = tmp_path / "agent.yaml"
    path.write_text(
        textwrap.dedent("""\
        name: typo
        model:
          provider: scriptd
        """)
    )
    with pytest.raises(SpecError) as err:
        load_agent(str(path))
    assert str(err.value) == (
        f"agent file {path}, line 3: `model.provider`: 'scriptd' is not a model provider; "
        "did you mean `scripted`?"
    )


def test_a_misspelt_provider_in_python_suggests_the_name():
    with pytest.raises(SpecError, match=r"`model.provider`: 'opnai' is not a model provider; "
                       r"did you mean `openai`\?"):  # fmt: skip
        ModelSpec(provider="opnai")
    with pytest.raises(SpecError, match=r"'ecoh:x'.*did you mean `echo`\?"):
        Agent(name="typo", model="ecoh:x")
    with pytest.raises(SpecError, match="the providers are") as refused:
        check_provider("zzzzzz")
    # Every registered name is listed (others, such as the MCP proxy's `mcp_client`, may be
    # registered by whatever this process imported before).
    listed = str(refused.value).split("the providers are", 1)[1]
    for name in ("openai", "scripted", "sim", "echo"):
        assert f"`{name}`" in listed


def test_a_provider_name_must_be_usable_in_provider_colon_name():
    with pytest.raises(SpecError, match="without ':'"):
        register_provider("a:b", build_echo)
    with pytest.raises(TypeError):
        register_provider("nothing", None)  # type: ignore[arg-type]
    assert "nothing" not in provider_names()
