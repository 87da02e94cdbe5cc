"""The `python` tool source: functions of the agent's own files (and the packages it allows).

A source per reference (`/abs/path/tools.py:lookup`): opening it imports the function
(`bosun.spec.refs.served_tool`), discovery describes it as its code declares it, and a
call runs it: a sync function on a thread of the runtime's `ToolPool` (the timeout counts
from the moment the body begins), an async one on the event loop. Which references may
name a tool at all is decided when the agent is loaded (`bosun.spec.refs`), before any
source is opened.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from bosun.errors import BosunError, SourceUnavailable
from bosun.spec.definition import SourceSpec, ToolDefinition
from bosun.spec.refs import served_tool
from bosun.spec.tool import Tool
from bosun.tools.sources import Call, register_source_kind


class PythonSource:
    """One Python function as a tool source (see the module docstring)."""

    def __init__(self, spec: SourceSpec):
        self.spec = spec
        self.ref: str = spec.config.get("ref") or spec.identity
        self._tool: Tool | None = None

    async def open(self) -> None:
        try:
            self._tool = served_tool(self.ref)
        except (BosunError, ImportError, SyntaxError) as exc:
            raise SourceUnavailable(f"cannot import tool {self.ref}: {exc}") from exc

    async def discover(self) -> list[ToolDefinition]:
        assert self._tool is not None, "open() first"
        return [self._tool.definition()]

    async def invoke(self, name: str, arguments: dict[str, Any], call: Call) -> Any:
        tool = self._tool
        assert tool is not None, "open() first"
        if tool.context_param:
            arguments = {**arguments, tool.context_param: call.context}
        if tool.is_async:
            async with asyncio.timeout(call.timeout):  # no extra task per call
                return await tool.fn(**arguments)
        slot = call.slot
        return await slot.pool.run_sync(slot, functools.partial(tool.fn, **arguments), call.timeout)

    async def close(self) -> None:
        self._tool = None


register_source_kind("python", PythonSource)

__all__ = ["PythonSource"]
