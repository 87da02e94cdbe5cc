"""Where a definition was written, so a mistake in a Python agent reads like one in YAML.

`Agent(name="x", limits=Limits(max_steps="ten"))` raises a `SpecError` naming the file
and line of the call and the field, "agent.py, line 12: `limits.max_steps`: input
should be a valid integer, got 'ten'", instead of a pydantic traceback.
"""

from __future__ import annotations

import os
import sys
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError

from bosun.errors import SpecError
from bosun.spec.yaml_lines import describe, field_name

_SPEC = os.path.dirname(os.path.abspath(__file__))
_BOSUN = os.path.dirname(_SPEC)


def definition_site() -> tuple[str, int] | None:
    """(file, line) of the user code that called into `bosun.spec`, or None when the
    caller is Bosun itself (a YAML file or a pinned version: those errors say where)."""
    frame = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        generated = code.co_filename == "<string>" and code.co_name == "__init__"  # dataclass
        if not generated and not code.co_filename.startswith(_SPEC):
            break
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None or frame.f_code.co_filename.startswith(_BOSUN):
        return None
    return frame.f_code.co_filename, frame.f_lineno


def site_text(site: tuple[str, int] | None) -> str:
    """ "agent.py, line 12" (relative to the current directory when under it)."""
    if site is None:
        return ""
    path, line = site
    if os.path.isabs(path):
        relative = os.path.relpath(path)
        path = relative if not relative.startswith("..") else path
    return f"{path}, line {line}"


class SpecValueError(SpecError, ValueError):
    """A spec model built in Python with a bad value. A `ValueError` too, as pydantic's
    own error is, so code that catches that (and pydantic validators) still does."""


def located(
    site: tuple[str, int] | None, message: str, kind: type[SpecError] = SpecError
) -> SpecError:
    """`message` prefixed with where it was written (each line of it)."""
    where = site_text(site)
    if not where:
        return kind(message)
    return kind("\n".join(f"{where}: {line}" for line in message.splitlines()))


def python_error(exc: ValidationError, model: type[BaseModel], prefix: str) -> str:
    """A pydantic error of a model built in Python, one line per field: "`limits.x`: ..."."""
    problems = []
    for err in exc.errors():
        name = field_name(tuple(err["loc"]))
        full = f"{prefix}.{name}" if prefix and name != "(top level)" else prefix or name
        problems.append(f"`{full}`: {describe(err, model, plain_value_errors=True)}")
    return "\n".join(dict.fromkeys(problems))


class _SpecModelType(type(BaseModel)):  # type: ignore[misc]
    """Wraps the direct call `Limits(...)` only: pydantic validating a nested model (a
    YAML file's `limits:`) does not go through it, so its errors keep their locations."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except ValidationError as exc:
            message = python_error(exc, cls, getattr(cls, "field_prefix", ""))
            raise located(definition_site(), message, SpecValueError) from None


class SpecModel(BaseModel, metaclass=_SpecModelType):
    """A spec model built directly in Python (`Limits(max_steps="ten")`) raises a
    `SpecError` naming the caller's file and line and the field, not a traceback."""

    field_prefix: ClassVar[str] = ""
