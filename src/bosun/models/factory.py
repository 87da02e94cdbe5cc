"""Build the provider an agent's `ModelSpec` names (with its fallbacks, behind breakers)."""

from __future__ import annotations

from bosun.models.base import ModelProvider
from bosun.models.breaker import Breakers
from bosun.models.router import RouterProvider
from bosun.spec.model import ModelSpec


def build_single(spec: ModelSpec) -> ModelProvider:
    if spec.provider == "scripted":
        from bosun.models.scripted import ScriptedProvider

        return ScriptedProvider(spec)
    if spec.provider == "sim":
        from bosun.models.sim import SimProvider

        return SimProvider(spec)
    from bosun.models.openai_provider import OpenAIProvider

    return OpenAIProvider(spec)


def build_provider(spec: ModelSpec, breakers: Breakers | None = None) -> ModelProvider:
    if not spec.fallbacks:
        return build_single(spec)
    chain = [spec.model_copy(update={"fallbacks": ()}), *spec.fallbacks]
    return RouterProvider([(s.endpoint, build_single(s)) for s in chain], breakers or Breakers())
