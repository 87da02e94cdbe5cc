"""Build the provider an agent's `ModelSpec` names."""

from __future__ import annotations

from bosun.models.base import ModelProvider
from bosun.spec.model import ModelSpec


def build_provider(spec: ModelSpec) -> ModelProvider:
    if spec.provider == "scripted":
        from bosun.models.scripted import ScriptedProvider

        return ScriptedProvider(spec)
    if spec.provider == "sim":
        from bosun.models.sim import SimProvider

        return SimProvider(spec)
    from bosun.models.openai_provider import OpenAIProvider

    return OpenAIProvider(spec)
