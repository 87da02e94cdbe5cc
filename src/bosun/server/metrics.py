"""`/metrics` for Prometheus: the observe layer's exposition, behind an admin key (metrics
span every tenant). A scraper sends the key as a bearer token:

    authorization: {type: Bearer, credentials: bosun_...}   # prometheus.yml scrape_config
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse

from bosun.server.auth import require
from bosun.server.keys import Principal
from bosun.server.state import state_of

router = APIRouter()


@router.get("/metrics", response_class=PlainTextResponse, tags=["health"])
async def metrics(
    request: Request, p: Annotated[Principal, Depends(require("admin"))]
) -> PlainTextResponse:
    """Prometheus text exposition (needs an admin key: metrics cover every tenant)."""
    state = state_of(request)
    from bosun.observe import metrics as observe_metrics  # the observe layer's exposition

    body, content_type = await observe_metrics.exposition(state.runtime)
    return PlainTextResponse(body, media_type=content_type)
