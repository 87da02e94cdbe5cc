"""Run one tool call: validated arguments in, a JSON-ready result or a classified error out.

Every call goes to its source through `SourcePool.invoke` (`bosun.tools.sources`); this
module owns what is the same for every source: retries, result cleaning, the error
classes, and the thread pool Python's sync tools run on (`bosun.tools.python`).

Sync functions run on threads of the runtime's `ToolPool`, so a slow tool never blocks
other runs. The pool is sized deliberately (`Runtime(tool_threads=...)`, `bosun worker
--tool-threads`; default `DEFAULT_TOOL_THREADS`) and a call *reserves* a thread before its
start is journaled: a call waiting for a thread has not started, as far as the journal,
the kill switches and the timeout are concerned. The timeout clock starts when the body
actually begins. Async tools run on the event loop and need no thread.

Retries apply only to idempotent tools (`make_tool` refuses the other combination) and
reuse the same idempotency key.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from pydantic_core import PydanticSerializationError, to_jsonable_python

from bosun.errors import SourceUnavailable
from bosun.journal.text import clean_text, clean_value
from bosun.spec.definition import Pin
from bosun.spec.media import has_media
from bosun.spec.tool import Tool, ToolContext
from bosun.spec.wait import Wait
from bosun.tools.sources import Call, SourcePool

# Exceptions that mean the call's arguments were wrong, not that the tool failed: they go
# back to the model, are not retried, and never open a circuit breaker.
CALLER_ERRORS: tuple[type[BaseException], ...] = (ValueError, TypeError, LookupError)

# Sync tool bodies that may run at once in one process. Tools mostly wait on the network,
# so this is sized for waiting, not for CPU; calls beyond it wait (not started) for a thread.
DEFAULT_TOOL_THREADS = 64

# Stores the media (and an excerpt's whole) of a raw result, returning the result with
# references and the whole's reference (`bosun.engine.media.keeper` builds one per run).
Keep = Callable[[Any], Awaitable[tuple[Any, "dict[str, Any] | None"]]]


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    ok: bool
    result: Any = None
    error_type: str = ""
    message: str = ""
    duration_ms: float = 0.0
    attempts: int = 1
    # Whose fault a failure was: "tool" (a timeout, its endpoint, a bug) or "call" (the
    # arguments were wrong: ValueError, TypeError, LookupError). Circuit breakers count the
    # tool's only.
    fault: str = "tool"
    full: dict[str, Any] | None = None  # the whole result's artifact, if `result` is an excerpt


class Slot:
    """A thread reserved for one call's next attempt (`held`), or none for an async tool.
    An async context manager (a plain class: this is on every tool call's path)."""

    __slots__ = ("held", "needs_thread", "pool")

    def __init__(self, pool: ToolPool, is_async: bool):
        self.pool = pool
        self.held = False
        self.needs_thread = not is_async

    async def __aenter__(self) -> Slot:
        if self.needs_thread:
            pool = self.pool
            free = pool._semaphore()
            pool.waiting += 1
            try:
                await free.acquire()
            finally:
                pool.waiting -= 1
            self.held = True
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.held:  # reserved, never used (e.g. killed first)
            self.held = False
            self.pool._semaphore().release()


class ToolPool:
    """The threads sync tools run on, and the count of free ones.

    A thread is taken before a call's start is journaled (`slot`) and given back when the
    tool's body returns, not when its caller stops waiting: a body that outlives its
    timeout keeps its thread, so the pool never runs more bodies than it has threads.
    """

    def __init__(self, threads: int = DEFAULT_TOOL_THREADS):
        if threads < 1:
            raise ValueError(f"tool_threads must be at least 1, got {threads}")
        self.threads = threads
        self._executor: ThreadPoolExecutor | None = None
        self._free: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.waiting = 0  # calls waiting for a thread now (not started, not journaled)

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._free is None or self._loop is not loop:
            self._free, self._loop = asyncio.Semaphore(self.threads), loop
        return self._free

    @property
    def busy(self) -> int:
        """Threads running a tool body (or reserved for one) now."""
        return 0 if self._free is None else self.threads - self._free._value

    def slot(self, tool: Tool) -> Slot:
        """`async with pool.slot(tool) as slot:` waits for a free thread (sync tools) and
        holds it for the call's first attempt; an async tool takes none."""
        return Slot(self, tool.is_async)

    async def run_sync(self, slot: Slot, fn: Callable[[], Any], timeout: float) -> Any:
        """Run `fn` on a pool thread; the timeout counts from the moment it begins."""
        free = self._semaphore()
        if not slot.held:  # a retry: take a thread again
            await free.acquire()
        slot.held = False  # the thread gives it back when the body returns
        loop = asyncio.get_running_loop()
        began = loop.create_future()

        def body() -> Any:
            _call_soon(loop, _resolve, began)
            return fn()

        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix="bosun-tool")
        try:
            running = self._executor.submit(body)
        except BaseException:
            free.release()
            raise
        # Given back when the body returns, or when it is cancelled before it began; never
        # when the caller merely stops waiting (a timeout, a lost lease).
        running.add_done_callback(lambda _: _call_soon(loop, free.release))
        waiting = asyncio.wrap_future(running, loop=loop)
        try:
            await asyncio.wait({began, waiting}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            running.cancel()  # not begun yet: it never will; begun: it finishes on its thread
            raise
        async with asyncio.timeout(timeout):
            return await waiting

    def close(self) -> None:
        """Stop taking work; bodies still running finish on their threads."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


def _resolve(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_result(None)


def _call_soon(loop: asyncio.AbstractEventLoop, fn: Callable[..., None], *args: Any) -> None:
    with contextlib.suppress(RuntimeError):  # the loop closed while the body ran
        loop.call_soon_threadsafe(fn, *args)


async def execute_tool(
    tool: Tool,
    kwargs: dict[str, Any],
    ctx: ToolContext | Callable[[], ToolContext],
    slot: Slot,
    sources: SourcePool,
    pin: Pin,
    keep: Keep | None = None,
) -> ToolOutcome:
    """Run the call on its source (`SourcePool.invoke`, the one path every tool call takes),
    in the thread `slot` reserved (see `ToolPool.slot`), with its retries."""
    start = time.perf_counter()
    delay = tool.retry.backoff_seconds
    attempt = 0
    call = Call(ctx, tool.timeout, slot)
    while True:
        attempt += 1
        try:
            result = await sources.invoke(pin, kwargs, call)
            if isinstance(result, Wait):  # the result comes later: the loop parks the call
                return ToolOutcome(True, result, duration_ms=(time.perf_counter() - start) * 1000)
            full = None
            if keep is not None and has_media(result):  # bytes to the artifact store
                result, full = await keep(result)
            try:
                jsonable = clean_value(to_jsonable_python(result))
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
                full=full,
            )
        except TimeoutError:
            error_type, message = "timeout", f"tool {tool.name} timed out after {tool.timeout}s"
            fault = "tool"
        except asyncio.CancelledError:
            raise
        except SourceUnavailable as exc:
            # "source_lost": the request may have reached the source, so it may have taken
            # effect (treated like a timeout); "source_unavailable": it surely did not.
            error_type = "source_lost" if exc.sent else "source_unavailable"
            message, fault = clean_text(str(exc)), "tool"
        except Exception as exc:
            # A source's own error class may name itself (`error_type`: an A2A task that
            # failed is `remote_failed`, as when its wait settles); else the exception's.
            named = getattr(exc, "error_type", None)
            error_type = named if isinstance(named, str) and named else type(exc).__name__
            message = clean_text(str(exc) or type(exc).__name__)
            fault = "call" if isinstance(exc, CALLER_ERRORS) else "tool"
        if attempt >= tool.retry.max_attempts or fault == "call":  # the same call fails again
            return ToolOutcome(
                False,
                error_type=error_type,
                message=message,
                duration_ms=(time.perf_counter() - start) * 1000,
                attempts=attempt,
                fault=fault,
            )
        await asyncio.sleep(delay)
        delay *= tool.retry.backoff_multiplier
