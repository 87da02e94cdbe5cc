"""Import tools and agents by reference: `package.module:name` or `path/to/file.py:name`.

A file loaded by path gets a stable module name and remembers its path, so the
refs of the tools it defines point back to the file and a worker in another
process can load them again.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
from types import ModuleType
from typing import Any

from bosun.errors import ToolNotFound
from bosun.spec.tool import Tool, make_tool


def load_module(source: str) -> ModuleType:
    """Import a module by dotted name, or a Python file by path (cached per absolute path)."""
    if source.endswith(".py") or os.sep in source:
        path = os.path.abspath(source)
        name = "bosun_src_" + hashlib.sha1(path.encode()).hexdigest()[:12]
        if name in sys.modules:
            return sys.modules[name]
        if not os.path.isfile(path):
            raise ToolNotFound(f"cannot load {source}: no such file")
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
        except BaseException:
            del sys.modules[name]
            raise
        return module
    try:
        return importlib.import_module(source)
    except ImportError as exc:
        raise ToolNotFound(f"cannot import module {source!r}: {exc}") from exc


def load_object(ref: str) -> Any:
    """The object named by `module:attr` (attr may be dotted)."""
    source, sep, attr = ref.rpartition(":")
    if not sep or not source or not attr:
        raise ToolNotFound(f"{ref!r} is not a reference: write it as `module:function`")
    module = load_module(source)
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ToolNotFound(f"{source} has no {attr!r} (from reference {ref!r})") from None
    return obj


def load_tool(ref: str) -> Tool:
    """A `Tool` from a reference; an undecorated function gets the default declaration."""
    obj = load_object(ref)
    if isinstance(obj, Tool):
        return obj
    if callable(obj):
        return make_tool(obj)
    raise ToolNotFound(f"{ref!r} is neither a function nor a @tool")
