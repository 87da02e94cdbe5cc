"""Bosun's refusals as MCP tool errors.

`bosun.server.ops` speaks the API's language (`HTTPException` 403/404 with a detail that
says what to do) and the runtime raises `BosunError`s; an MCP client expects a tool error
(`isError`) with that same sentence, not a dropped connection or a JSON-RPC internal error.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import HTTPException
from mcp.server.mcpserver.exceptions import ToolError

from bosun.errors import BosunError
from bosun.store.base import ApprovalConflict


@contextlib.asynccontextmanager
async def refused() -> AsyncIterator[None]:
    """Turn the operations layer's refusals into `ToolError`s with the same message."""
    try:
        yield
    except HTTPException as exc:
        raise ToolError(str(exc.detail)) from None
    except (BosunError, ApprovalConflict) as exc:
        raise ToolError(str(exc)) from None
