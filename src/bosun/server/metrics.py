"""`/metrics` for Prometheus: the observe layer's exposition (`bosun.observe.metrics`), fed by
this process's commits, behind a platform key (metrics span every tenant). A scraper sends the
key as a bearer token:

    authorization: {type: Bearer, credentials: bosun_...}   # prometheus.yml scrape_config
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response

from bosun.server.auth import require
from bosun.server.keys import Principal
from bosun.server.state import server_state

log = logging.getLogger("bosun.server")
router = APIRouter()


async def attach_metrics(runtime: Any) -> tuple[Any, Any] | tuple[None, None]:
    """(metrics, observer) listening to the runtime's commits; (None, None) without
    prometheus-client."""
    try:
        from bosun.observe.feed import Observer
        from bosun.observe.metrics import Metrics
    except ImportError as exc:
        log.warning("/metrics is disabled: %s", exc)
        return None, None
    metrics = Metrics(runtime.store)
    observer = await Observer(runtime.store, [metrics]).attach(runtime)
    return metrics, observer


@router.get(
    "/metrics",
    tags=["health"],
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus exposition"}},
)
async def metrics(request: Request, p: Annotated[Principal, Depends(require("platform"))]):
    """Prometheus text exposition (needs a platform key: metrics cover every tenant)."""
    state = server_state(request)
    if state.metrics is None:
        raise HTTPException(503, "metrics need prometheus-client: pip install prometheus-client")
    from bosun.observe.metrics import CONTENT_TYPE

    return Response(await state.metrics.render(), media_type=CONTENT_TYPE)
