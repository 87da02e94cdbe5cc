"""Where a function's code lives, as a reference another process can import again.

A function of the project (any file outside the standard library and the installed
packages) is referenced by its file's absolute path, `/abs/path/tools.py:lookup`,
not by the module name it happened to be imported under: a worker started in
another folder, or without the agent's folder on `sys.path`, still finds it. A
function of the standard library or an installed package keeps its module name
(`shutil:rmtree`), which every process on the machine can import.

References written relative to an agent file are located the same way: `tools.py:fn`
and `helpers:fn` (a module of the agent's folder) become the file's absolute path.
"""

from __future__ import annotations

import functools
import inspect
import os
import site
import sys
import sysconfig
from collections.abc import Callable
from typing import Any


def is_path(source: str) -> bool:
    return source.endswith(".py") or os.sep in source or "/" in source


def resolve_source(source: str, folder: str | None = None) -> str:
    """A reference's module part, located: a relative path or a module of `folder` becomes
    an absolute file path; anything else (an installed module) stays a module name."""
    if is_path(source):
        if not os.path.isabs(source):
            source = os.path.join(folder or os.getcwd(), source)
        return os.path.normpath(source)
    if folder and all(part.isidentifier() for part in source.split(".")):
        candidate = os.path.join(folder, *source.split("."))
        for path in (candidate + ".py", os.path.join(candidate, "__init__.py")):
            if os.path.isfile(path):
                return os.path.normpath(path)
    return source


def resolve_ref(ref: str, folder: str | None = None) -> str:
    """`ref` with its module part located (see `resolve_source`)."""
    source, sep, attr = ref.rpartition(":")
    if not sep or not source:
        return ref
    return f"{resolve_source(source, folder)}:{attr}"


@functools.cache
def _library_dirs() -> tuple[str, ...]:
    """The folders of the standard library and of installed packages (with a trailing sep)."""
    dirs: set[str] = set()
    for scheme_vars in (None, {"base": sys.base_prefix, "platbase": sys.base_exec_prefix}):
        paths = sysconfig.get_paths(vars=scheme_vars) if scheme_vars else sysconfig.get_paths()
        dirs.update(paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths)
    dirs.update(getattr(site, "getsitepackages", list)())
    if site.ENABLE_USER_SITE:
        dirs.add(site.getusersitepackages())
    return tuple(os.path.join(os.path.abspath(d), "") for d in dirs if d)


def is_library_file(path: str) -> bool:
    """Whether `path` belongs to the standard library or an installed package."""
    return path.startswith("<frozen ") or os.path.abspath(path).startswith(_library_dirs())


def project_file(module: Any) -> str | None:
    """The absolute path of a module's source file when it is project code, else None."""
    source = getattr(module, "__bosun_source__", None)
    if source:
        return str(source)
    file = getattr(module, "__file__", None)
    if isinstance(file, str) and file.endswith(".py") and not is_library_file(file):
        return os.path.abspath(file)
    return None


def folder_of(fn: Callable[..., Any]) -> str | None:
    """The folder of the project file that defines `fn` (None for library code)."""
    path = project_file(inspect.getmodule(fn))
    return os.path.dirname(path) if path else None


def ref_of(fn: Callable[..., Any]) -> str:
    """`source:qualname` for a function: the file path for project code, else the module."""
    module = inspect.getmodule(fn)
    source = project_file(module) or getattr(fn, "__module__", None) or "?"
    return f"{source}:{getattr(fn, '__qualname__', type(fn).__qualname__)}"
