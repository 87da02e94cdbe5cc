"""One live connection to one MCP server, on the official SDK (`mcp.Client`).

The SDK's client lives in task groups that must be entered and left by the same task,
while Bosun opens a source from whichever run first needs it and closes it from
`Runtime.close`. So each connection has an *owner task* that enters the client, holds it
until it is told to close, and leaves it; calls are made from any task on the same loop.

The owner also keeps the server's change notifications coming: on a 2026-07-28 server
with `tools.listChanged` it holds a `subscriptions/listen` stream (the acknowledgment is
awaited before the connection counts as open, so no change is missed); on a 2025-era
server `notifications/tools/list_changed` arrives by itself. Either way `on_change` is
called, and the source re-lists before the next call.

Secrets (a bearer token, secret headers, an OAuth client's secret) are read from the
environment at connect time and go only into the HTTP client: never into a message, a log
line or the journal. OAuth (`auth.py`) is an `httpx2.Auth` of the SDK on that client; the
source owns it, and its tokens are in the process's memory (`tokens_for`), so a reconnect
reuses the token already held.
A request the endpoint refused (401/403) is remembered (`Refusals`), so the error says
the status and how the entry authenticates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import sys
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any

from bosun.errors import SourceUnavailable
from bosun.spec.mcp import McpServer
from bosun.tools.mcp.auth import Refusals, secret

log = logging.getLogger("bosun.tools.mcp")


def resolve_command(command: str) -> str:
    """A command on PATH, else next to the Python running Bosun (its virtualenv's bin:
    `pip install mcp-server-time` there and `command: mcp-server-time` finds it)."""
    if os.sep in command:
        return command
    found = shutil.which(command) or shutil.which(
        command, path=os.path.dirname(os.path.abspath(sys.executable))
    )
    return found or command


class Connection:
    """An open MCP client for one server (see the module docstring)."""

    def __init__(self, server: McpServer, on_change: Callable[[], None], auth: Any = None):
        self.server = server
        self.label = server.label
        self.on_change = on_change
        self.auth = auth  # the source's OAuth provider (an `httpx2.Auth`), or None
        self.refusals = Refusals(server) if server.url is not None else None
        self.client: Any = None
        self.lost = False  # the connection dropped (or was closed): reconnect, never reuse
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._errlog: Any = None

    async def open(self) -> None:
        """Connect, negotiate the protocol (2026-07-28 discovery, or the 2025-era
        handshake) and start listening for changes, within `connect_timeout`."""
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._own(ready), name=f"mcp:{self.label}")
        try:
            async with asyncio.timeout(self.server.connect_timeout):
                await asyncio.shield(ready)
        except TimeoutError:
            await self.abort()
            raise SourceUnavailable(
                f"MCP server {self.label} did not answer within connect_timeout "
                f"({self.server.connect_timeout:g}s)"
            ) from None
        except SourceUnavailable:
            await self.close()
            raise
        except Exception as exc:
            await self.close()
            refused = self.refused()
            if refused is not None:
                raise SourceUnavailable(refused) from exc
            raise SourceUnavailable(
                f"MCP server {self.label} could not be started or reached: {describe(exc)}"
            ) from exc

    def refused(self) -> str | None:
        """What the server refused, in words naming the entry's auth settings: an OAuth
        flow that failed, or the endpoint's last 401/403; None when neither happened."""
        failure = getattr(self.auth, "failure", None)
        if failure is not None:
            self.auth.failure = None
            return (
                f"MCP server {self.label}: OAuth did not give the worker a token: "
                f"{describe(failure)}; the entry's auth: {self.server.auth_settings()}"
            )
        return self.refusals.explain() if self.refusals is not None else None

    async def _own(self, ready: asyncio.Future[None]) -> None:
        try:
            async with AsyncExitStack() as stack:
                client = await self._client(stack)
                await stack.enter_async_context(client)
                self.client = client
                listening = await self._listen(client)
                ready.set_result(None)
                await self._closing.wait()
                if listening is not None:
                    listening.cancel()
                    with contextlib.suppress(BaseException):
                        await listening
        except BaseException as exc:
            if not ready.done():
                if isinstance(exc, asyncio.CancelledError):
                    ready.cancel()
                else:
                    ready.set_exception(exc)
                    ready.exception()  # retrieved here too: open() may have stopped waiting
            elif not isinstance(exc, asyncio.CancelledError | GeneratorExit):
                log.info("MCP server %s: connection ended: %s", self.label, describe(exc))
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            self.lost = True
            if self._errlog is not None:
                self._errlog.close()

    async def _client(self, stack: AsyncExitStack) -> Any:
        from mcp import Client, Implementation, StdioServerParameters
        from mcp.client.stdio import stdio_client
        from mcp.client.streamable_http import streamable_http_client

        from bosun import __version__

        server = self.server
        if server.command is not None:
            params = StdioServerParameters(
                command=resolve_command(server.command),
                args=list(server.args),
                env={name: os.environ[name] for name in server.env if name in os.environ},
                cwd=server.cwd,
            )
            if server.stderr == "inherit":
                errlog = sys.stderr
            else:
                errlog = self._errlog = open(os.devnull, "w")  # noqa: SIM115 (closed by _own)
            transport: Any = stdio_client(params, errlog=errlog)
        else:
            import httpx2

            headers = dict(server.headers)
            for header, var in server.headers_env.items():
                headers[header] = secret(var, f"header {header}", self.label)
            if server.bearer_token_env:
                token = secret(server.bearer_token_env, "the bearer token", self.label)
                headers["Authorization"] = f"Bearer {token}"
            assert self.refusals is not None
            http = httpx2.AsyncClient(
                headers=headers,
                timeout=httpx2.Timeout(server.connect_timeout, read=300.0),
                auth=self.auth,
                event_hooks={"response": [self.refusals.hook]},
            )
            await stack.enter_async_context(http)
            transport = streamable_http_client(str(server.url), http_client=http)
        return Client(
            transport,
            mode=server.protocol,  # "auto" or "legacy", as the SDK names them
            cache=None,  # every list is a real one: the rug-pull check depends on it
            message_handler=self._message,
            client_info=Implementation(name="bosun", version=__version__),
        )

    async def _listen(self, client: Any) -> asyncio.Task[None] | None:
        """On a 2026-07-28 server that announces tool list changes, hold a listen stream
        (and wait for its acknowledgment); None when there is nothing to listen to."""
        from mcp_types.version import MODERN_PROTOCOL_VERSIONS

        tools = client.server_capabilities.tools
        if client.protocol_version not in MODERN_PROTOCOL_VERSIONS or not (
            tools and tools.list_changed
        ):
            return None
        acked = asyncio.Event()

        async def listen() -> None:
            try:
                async with client.listen(tools_list_changed=True) as events:
                    acked.set()
                    async for _event in events:
                        self.on_change()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a dropped stream: the connection is gone with it
                log.info("MCP server %s: change stream ended: %s", self.label, describe(exc))
                self.lost = True
            finally:
                acked.set()

        task = asyncio.create_task(listen(), name=f"mcp-listen:{self.label}")
        await acked.wait()
        return task

    async def _message(self, message: Any) -> None:
        """The SDK's handler of what the server sends unasked (on the session's task)."""
        from mcp.types import ToolListChangedNotification

        if isinstance(message, ToolListChangedNotification) or isinstance(
            getattr(message, "root", None), ToolListChangedNotification
        ):
            self.on_change()

    async def abort(self) -> None:
        """Stop connecting now (a connect that timed out)."""
        self.lost = True
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task

    async def close(self) -> None:
        """Leave the client on its owner task (stops a stdio server), waiting a little."""
        self.lost = True
        self._closing.set()
        task = self._task
        if task is None or task.done():
            return
        try:
            async with asyncio.timeout(5.0):
                await asyncio.shield(task)
        except (TimeoutError, Exception):
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


def describe(exc: BaseException) -> str:
    """An exception in one line; an exception group by the first thing inside it."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


__all__ = ["Connection", "describe", "resolve_command"]
