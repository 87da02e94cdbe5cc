"""Users catch Bosun's errors by importing them from `bosun` itself, not from internal modules."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import bosun
from bosun.errors import BosunError

PUBLIC_ERRORS = [
    "ApprovalConflict",
    "BudgetExhausted",
    "EditRefused",
    "FactNotFound",
    "InputMappingFailed",
    "InvalidAnswer",
    "NewerDatabase",
    "LeaseLost",
    "ModelError",
    "Replayed",
    "ResultNotFound",
    "RunAlreadyFinished",
    "RunNotFound",
    "SourceUnavailable",
    "SpecError",
    "StoreError",
    "StoreUnavailable",
    "ToolNotFound",
    "UnstorableEvent",
]


@pytest.mark.parametrize("name", PUBLIC_ERRORS)
def test_error_is_importable_from_bosun_and_is_a_bosun_error(name: str) -> None:
    exc = getattr(bosun, name)
    assert name in bosun.__all__
    assert issubclass(exc, BosunError)
    # `from bosun import X` works (what users write).
    namespace: dict[str, object] = {}
    exec(f"from bosun import {name}", namespace)
    assert namespace[name] is exc


def test_every_bosun_error_defined_in_the_package_is_exported() -> None:
    """A new error class anywhere in `bosun` must be added to the public surface too."""
    found: set[str] = set()
    for info in pkgutil.walk_packages(bosun.__path__, "bosun."):
        if info.name.endswith("__main__"):  # importing it runs the CLI
            continue
        try:
            module = importlib.import_module(info.name)
        except ImportError:  # optional extras (e.g. a driver) not installed
            continue
        for name, obj in vars(module).items():
            if (
                inspect.isclass(obj)
                and issubclass(obj, BosunError)
                and obj.__module__ == module.__name__
                and not name.startswith("_")
            ):
                found.add(name)
    # SpecValueError is pydantic plumbing (a SpecError that is also a ValueError), never raised
    # to users as itself.
    found.discard("SpecValueError")
    assert found - {"BosunError"} <= set(PUBLIC_ERRORS), found - set(PUBLIC_ERRORS)
    assert "BosunError" in bosun.__all__
