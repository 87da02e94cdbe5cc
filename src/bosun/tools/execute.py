"""Run one tool call: validated arguments in, a JSON-ready result or a classified error out.

Sync functions run in a thread so a slow tool never blocks other runs; every
call has a timeout. Retries apply only to idempotent tools (`make_tool`
refuses the other combination) and reuse the same idempotency key.
"""

from __future__ import annotations

import asyncio
import functools
import time
from dataclasses import dataclass
from typing import Any

from pydantic_core import PydanticSerializationError, to_jsonable_python

from bosun.spec.tool import Tool, ToolContext


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    ok: bool
    result: Any = None
    error_type: str = ""
    message: str = ""
    duration_ms: float = 0.0
    attempts: int = 1


async def _call_once(tool: Tool, kwargs: dict[str, Any], ctx: ToolContext) -> Any:
    if tool.context_param:
        kwargs = {**kwargs, tool.context_param: ctx}
    async with asyncio.timeout(tool.timeout):  # no extra task per call, unlike wait_for
        if tool.is_async:
            return await tool.fn(**kwargs)
        return await asyncio.to_thread(functools.partial(tool.fn, **kwargs))


async def execute_tool(tool: Tool, kwargs: dict[str, Any], ctx: ToolContext) -> ToolOutcome:
    start = time.perf_counter()
    delay = tool.retry.backoff_seconds
    attempt = 0
    while True:
        attempt += 1
        try:
            result = await _call_once(tool, kwargs, ctx)
            try:
                jsonable = to_jsonable_python(result)
            except PydanticSerializationError as exc:
                return ToolOutcome(
                    False,
                    error_type="unserializable_result",
                    message=f"tool {tool.name} returned a value that is not JSON: {exc}",
                    duration_ms=(time.perf_counter() - start) * 1000,
                    attempts=attempt,
                )
            return ToolOutcome(
                True,
                jsonable,
                duration_ms=(time.perf_counter() - start) * 1000,
                attempts=attempt,
            )
        except TimeoutError:
            error_type, message = "timeout", f"tool {tool.name} timed out after {tool.timeout}s"
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error_type, message = type(exc).__name__, str(exc) or type(exc).__name__
        if attempt >= tool.retry.max_attempts:
            return ToolOutcome(
                False,
                error_type=error_type,
                message=message,
                duration_ms=(time.perf_counter() - start) * 1000,
                attempts=attempt,
            )
        await asyncio.sleep(delay)
        delay *= tool.retry.backoff_multiplier
