"""Model providers by name: the factories that build them, open to new entries.

`register_provider("mine", build_mine)` is all a new provider needs: the name becomes
valid in `model.provider` (YAML and Python alike, see `bosun.spec.providers`) and
`build_provider` builds it, with fallbacks and breakers like any other. The built-ins
(`openai`, `scripted`, `sim`) are registered here the same way, so nothing special-cases
them; their modules are imported when first built (the OpenAI client is not needed to
run a scripted agent).
"""

from __future__ import annotations

from collections.abc import Callable

from bosun.errors import SpecError
from bosun.models.base import ModelProvider
from bosun.models.breaker import Breakers
from bosun.models.router import RouterProvider
from bosun.spec.model import ModelSpec
from bosun.spec.providers import add_provider_name

ProviderFactory = Callable[[ModelSpec], ModelProvider]

_FACTORIES: dict[str, ProviderFactory] = {}


def register_provider(name: str, factory: ProviderFactory, *, offline: bool = False) -> None:
    """Build `model.provider: name` with `factory(spec)`. `offline`: it needs no network
    or key (its model is then named after it by default, as `scripted` and `sim` are).
    Registering a name again replaces its factory (e.g. a test double of a real API)."""
    if not callable(factory):
        raise TypeError(f"register_provider({name!r}, ...): the factory must be callable")
    add_provider_name(name, offline=offline)
    _FACTORIES[name] = factory


def build_single(spec: ModelSpec) -> ModelProvider:
    """The provider `spec` names, without its fallbacks."""
    factory = _FACTORIES.get(spec.provider)
    if factory is None:  # a name added to the spec vocabulary, not through register_provider
        raise SpecError(
            f"model provider {spec.provider!r} has no factory: add it with register_provider"
        )
    return factory(spec)


def build_provider(spec: ModelSpec, breakers: Breakers | None = None) -> ModelProvider:
    """The provider `spec` names; with fallbacks, a router trying each in order behind its
    endpoint's circuit breaker."""
    if not spec.fallbacks:
        return build_single(spec)
    chain = [spec.model_copy(update={"fallbacks": ()}), *spec.fallbacks]
    return RouterProvider([(s.endpoint, build_single(s)) for s in chain], breakers or Breakers())


def _openai(spec: ModelSpec) -> ModelProvider:
    from bosun.models.openai_provider import OpenAIProvider

    return OpenAIProvider(spec)


def _scripted(spec: ModelSpec) -> ModelProvider:
    from bosun.models.scripted import ScriptedProvider

    return ScriptedProvider(spec)


def _sim(spec: ModelSpec) -> ModelProvider:
    from bosun.models.sim import SimProvider

    return SimProvider(spec)


def _anthropic(spec: ModelSpec) -> ModelProvider:
    from bosun.models.anthropic_provider import AnthropicProvider

    return AnthropicProvider(spec)


def _gemini(spec: ModelSpec) -> ModelProvider:
    from bosun.models.gemini_provider import GeminiProvider

    return GeminiProvider(spec)


def _workflow(spec: ModelSpec) -> ModelProvider:
    # A workflow's interpreter (`bosun.workflow`, docs/workflows.md): registered here so a
    # worker rebuilds a pinned workflow version without importing it first.
    from bosun.workflow.provider import build

    return build(spec)


register_provider("openai", _openai)
register_provider("scripted", _scripted, offline=True)
register_provider("sim", _sim, offline=True)
register_provider("anthropic", _anthropic)
register_provider("gemini", _gemini)
register_provider("workflow", _workflow, offline=True)
