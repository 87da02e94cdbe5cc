"""Import tools and agents by reference: `package.module:name` or `path/to/file.py:name`.

Agent files are trusted code: loading one imports the Python files it names. What a
tool reference may name is still narrow, so a typo or a pasted `os:system` never
turns a function of the standard library into something the model can call:

- a `@tool` (a `bosun.Tool`), wherever it is defined;
- a plain function defined in a Python file the agent names (`tools.py:lookup`,
  relative to the agent file) or in a module of the agent's folder (`helpers:lookup`
  is `<folder>/helpers.py`, whatever the current directory);
- anything else (a function of the standard library or of an installed package, a
  builtin, a class) only when the agent lists that reference under
  `allow_external_tools`.

The same rule applies to `undo` references, and again when a worker imports a
pinned version's tools (`Agent.from_snapshot`).

A file loaded by path gets a stable module name and remembers its path, so the
refs of the tools it defines point back to the file and a worker in another
process can load them again (see `bosun.spec.sources`). A file that is already
imported (the test module, the `__main__` script) is not executed a second time.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from bosun.errors import BosunError, SpecError, ToolNotFound
from bosun.spec.sources import is_library_file, is_path, resolve_source
from bosun.spec.tool import Tool, make_tool

_BY_PATH: dict[str, ModuleType] = {}  # absolute path -> the module loaded from it

ALLOW_HINT = (
    "Bosun calls only functions declared as tools: decorate your function with `@tool`, "
    "or keep it in a .py file next to the agent and name that file (`tools.py:{name}`); "
    "to call a function of another package as it is, list `{ref}` under "
    "`allow_external_tools`"
)


def _already_imported(path: str) -> ModuleType | None:
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if isinstance(file, str) and os.path.abspath(file) == path:
            return module
    return None


def _package_of(path: str) -> tuple[str, str] | None:
    """(root folder, dotted name) when `path` is part of a package (its folder has
    `__init__.py`): importing it by name keeps its relative imports working."""
    folder, file = os.path.split(path)
    stem = os.path.splitext(file)[0]
    parts = [] if stem == "__init__" else [stem]
    while os.path.isfile(os.path.join(folder, "__init__.py")):
        folder, package = os.path.split(folder)
        parts.insert(0, package)
    in_package = len(parts) > (0 if stem == "__init__" else 1)
    if not in_package or not all(p.isidentifier() for p in parts):
        return None
    return folder, ".".join(parts)


def _import_failed(path: str, exc: BaseException) -> ToolNotFound:
    """The error of a file that failed to import, with where in the user's code it failed."""
    if isinstance(exc, SyntaxError):
        where = ""  # its message says the file and line already
    else:
        frames = [
            f
            for f in traceback.extract_tb(exc.__traceback__)
            if not f.filename.startswith(("<", os.path.dirname(os.path.dirname(__file__))))
        ]
        where = f" ({frames[-1].filename}, line {frames[-1].lineno})" if frames else ""
    return ToolNotFound(f"importing {path} failed: {type(exc).__name__}: {exc}{where}")


def _load_path(path: str, source: str) -> ModuleType:
    if path in _BY_PATH:
        return _BY_PATH[path]
    name = "bosun_src_" + hashlib.sha1(path.encode()).hexdigest()[:12]
    if name in sys.modules:
        return sys.modules[name]
    if not os.path.isfile(path):
        raise ToolNotFound(f"cannot load {source}: no such file")
    module = _already_imported(path)
    if module is not None:
        _BY_PATH[path] = module
        return module
    package = _package_of(path)
    if package is not None:
        root, dotted = package
        if root not in sys.path:
            sys.path.insert(0, root)
        try:
            module = importlib.import_module(dotted)
        except BosunError:
            raise
        except Exception as exc:
            raise _import_failed(path, exc) from exc
        found = os.path.abspath(getattr(module, "__file__", "") or "")
        if found != path:
            raise ToolNotFound(
                f"cannot load {source}: it is module {dotted}, but `import {dotted}` finds "
                f"{found or 'a module without a file'}; rename the package"
            )
        _BY_PATH[path] = module
        return module
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ToolNotFound(f"cannot load {source}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    module.__bosun_source__ = path  # type: ignore[attr-defined]
    sys.modules[name] = module
    folder = os.path.dirname(path)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # let the file import its neighbours
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        del sys.modules[name]
        if isinstance(exc, BosunError) or not isinstance(exc, Exception):
            raise
        raise _import_failed(path, exc) from exc
    _BY_PATH[path] = module
    return module


def load_module(source: str, folder: str | None = None) -> ModuleType:
    """Import a module by dotted name, or a Python file by path (cached per absolute path).

    With `folder` (the agent file's), relative paths and modules of that folder are found
    there; other modules are imported from `sys.path` as usual.
    """
    located = resolve_source(source, folder)
    if is_path(located):
        return _load_path(os.path.abspath(located), source)
    try:
        return importlib.import_module(located)
    except BosunError:
        raise
    except ImportError as exc:
        raise ToolNotFound(f"cannot import module {source!r}: {exc}") from exc
    except Exception as exc:  # ValueError for an empty or odd name, or the module failed
        raise ToolNotFound(f"cannot import module {source!r}: {type(exc).__name__}: {exc}") from exc


def _split(ref: str) -> tuple[str, str]:
    source, sep, attr = ref.rpartition(":")
    if not sep or not source or not attr:
        raise ToolNotFound(f"{ref!r} is not a reference: write it as `module:function`")
    return source, attr


def load_object(ref: str, folder: str | None = None) -> Any:
    """The object named by `module:attr` (attr may be dotted)."""
    source, attr = _split(ref)
    module = load_module(source, folder)
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ToolNotFound(f"{source} has no {attr!r} (from reference {ref!r})") from None
    return obj


# -- what a reference may name -----------------------------------------------------------


def allowed_objects(refs: Sequence[str], folder: str | None = None) -> tuple[Any, ...]:
    """The functions an agent's `allow_external_tools` names, imported."""
    out = []
    for i, ref in enumerate(refs):
        try:
            out.append(_unwrap(load_object(ref, folder)))
        except BosunError as exc:
            raise SpecError(f"`allow_external_tools[{i}]`: {exc}") from None
    return tuple(out)


def _unwrap(obj: Any) -> Any:
    return obj.fn if isinstance(obj, Tool) else obj


def refusal(ref: str, obj: Any, module_name: str | None, allowed: Sequence[Any]) -> str | None:
    """Why `ref` (resolved to `obj`) may not be a tool, or None when it may.

    `module_name` is the module of a Python file the agent names (a path reference or a
    module of its folder); None when the reference names an installed module.
    """
    if isinstance(obj, Tool) or any(_unwrap(obj) is a for a in allowed):
        return None
    name = getattr(obj, "__name__", "fn")
    hint = ALLOW_HINT.format(name=name, ref=ref)
    if inspect.isfunction(obj):
        defined_in = obj.__module__
        if module_name is not None and defined_in == module_name:
            return None
        code_file = obj.__code__.co_filename
        library = is_library_file(code_file)
        if module_name is not None:
            what = f"{defined_in}.{obj.__qualname__}, imported into that file, not defined there"
        elif library:
            what = (
                f"a function of the standard library or an installed package "
                f"({defined_in}.{obj.__qualname__})"
            )
        else:
            what = f"a plain function of module {defined_in}, not a file next to the agent"
        return f"`{ref}` is {what}, not a tool. {hint}"
    if inspect.isclass(obj):
        return f"`{ref}` is a class, not a tool function. {hint}"
    if inspect.isbuiltin(obj) or callable(obj):
        module = getattr(obj, "__module__", None) or "?"
        kind = "a built-in function" if inspect.isbuiltin(obj) else type(obj).__name__
        return f"`{ref}` is {kind} (of {module}), not a tool. {hint}"
    return f"`{ref}` is a {type(obj).__name__}, not a function or a @tool"


def load_trusted(ref: str, folder: str | None = None, allowed: Sequence[Any] = ()) -> Any:
    """The object `ref` names, when a tool (or undo) reference may name it (see `refusal`)."""
    source, _ = _split(ref)
    located = resolve_source(source, folder)
    obj = load_object(ref, folder)
    module_name = load_module(located).__name__ if is_path(located) else None
    problem = refusal(ref, obj, module_name, allowed)
    if problem is not None:
        raise SpecError(problem)
    return obj


def load_tool(ref: str, folder: str | None = None, allowed: Sequence[Any] = ()) -> Tool:
    """A `Tool` from a reference; an undecorated function gets the default declaration."""
    obj = load_trusted(ref, folder, allowed)
    return obj if isinstance(obj, Tool) else make_tool(obj)


def served_tool(ref: str) -> Tool:
    """The tool `ref` serves as its own code declares it: the `@tool`'s declaration, or the
    default one of a plain function, without any agent's overrides. What a Python tool
    source discovers, and so what an agent version pins (`bosun.spec.definition`). Whether
    the reference may name it was checked when the agent was loaded (`load_trusted`)."""
    obj = load_object(ref)
    return obj if isinstance(obj, Tool) else make_tool(obj)


def load_undo(ref: str, allowed: Sequence[Any] = ()) -> Callable[..., Any]:
    """The compensating function an `undo` reference names (same rule as tools)."""
    return _unwrap(load_trusted(ref, None, allowed))  # type: ignore[no-any-return]


# -- can a worker import it again? -------------------------------------------------------


def _same_function(a: Any, b: Any) -> bool:
    if a is b:
        return True
    ca, cb = getattr(a, "__code__", None), getattr(b, "__code__", None)
    return (
        ca is not None
        and cb is not None
        and (ca.co_filename, ca.co_firstlineno, ca.co_qualname)
        == (cb.co_filename, cb.co_firstlineno, cb.co_qualname)
    )


def check_reimportable(
    what: str, ref: str, fn: Callable[..., Any] | None, allowed: Sequence[Any] = ()
) -> None:
    """Refuse a reference a worker in a fresh process could not import back to `fn`.

    Runs and queued runs are resumed by whichever process holds the lease, which knows the
    tool only by its reference: a function inside another function, a lambda or one typed
    into an interactive session has none that works there.
    """
    source, _, attr = ref.rpartition(":")
    fix = "workers import tools by reference, so define it at module level in a .py file"
    if attr.endswith("<lambda>"):
        raise SpecError(f"{what} is a lambda ({ref}); {fix}, with `def`")
    if "<locals>" in attr:
        outer = attr.split(".<locals>")[0]
        raise SpecError(f"{what} is defined inside function `{outer}()` ({ref}); {fix}")
    if source == "__main__":
        raise SpecError(
            f"{what} is defined in an interactive session (`__main__` has no file); {fix}"
        )
    try:
        obj = load_trusted(ref, None, allowed)
    except SpecError as exc:  # what it names may not be a tool
        raise SpecError(f"{what}: {exc}") from None
    except BosunError as exc:
        raise SpecError(f"{what}: a worker could not import {ref}: {exc}") from None
    if fn is not None and not _same_function(_unwrap(obj), fn):
        raise SpecError(
            f"{what}: {ref} names another object than the function the agent was given; "
            "give the tool function its own name at module level"
        )
