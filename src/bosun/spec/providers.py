"""The names of the model providers an agent may write in `model.provider`.

An open vocabulary: `bosun.models.registry.register_provider` adds a name together with
the factory that builds it, so a new provider is usable from YAML and Python without
editing Bosun. The names live here, in the spec layer, because a spec is validated
(`ModelSpec.provider`) before anything imports a provider; the factories live in
`bosun.models.registry`, which registers the built-ins (`openai`, `scripted`, `sim`) and
is imported whenever `bosun` is (the package imports the engine, which builds providers).

A provider also declares whether it is *offline* (answers without a network or a key,
like `scripted` and `sim`): an offline provider's model is named after the provider by
default (`{provider: sim}` is model "sim", not the `openai` default "gpt-4o-mini").
"""

from __future__ import annotations

from bosun.spec.where import SpecValueError
from bosun.spec.yaml_lines import did_you_mean

# name -> offline. Insertion order is the order names are listed in errors.
_NAMES: dict[str, bool] = {}


def add_provider_name(name: str, *, offline: bool = False) -> None:
    """Make `name` valid in `model.provider` (`register_provider` calls this)."""
    if not isinstance(name, str) or not name or ":" in name or name != name.strip():
        raise SpecValueError(f"provider name {name!r}: write a non-empty name without ':'")
    _NAMES[name] = offline


def provider_names() -> tuple[str, ...]:
    """Every registered provider name, built-ins first."""
    return tuple(_NAMES)


def is_offline(name: str) -> bool:
    return _NAMES.get(name, False)


def check_provider(name: object) -> str:
    """`name` if a provider is registered under it; else a SpecError (a ValueError too, so
    pydantic reports it as the field's error) with a "did you mean" for a typo."""
    if isinstance(name, str) and name in _NAMES:
        return name
    hint = did_you_mean(str(name), provider_names(), listing="the providers are")
    raise SpecValueError(f"{name!r} is not a model provider{hint}")
