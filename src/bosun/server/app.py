"""The ASGI application of `bosun serve`: HTTP API, console, health, metrics, and an
in-process worker, sharing one runtime (and one database connection)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from bosun import __version__
from bosun.engine.runtime import Runtime
from bosun.engine.worker import Worker
from bosun.errors import BosunError, EditRefused, RunAlreadyFinished, RunNotFound, StoreError
from bosun.journal.text import clean_value
from bosun.server import api, console, hooks, memory_api, memory_console, schemas, workflows
from bosun.server.a2a.deliver import PushDispatcher
from bosun.server.a2a.edge import A2AWire, mount_a2a
from bosun.server.hub import Hub
from bosun.server.keys import ensure_first_admin
from bosun.server.liveness import Liveness
from bosun.server.metrics import attach_metrics
from bosun.server.metrics import router as metrics_router
from bosun.server.middleware import Authenticate, BodyLimit, SecurityHeaders, store_unavailable
from bosun.server.state import ServerState, Settings, load_agents, parse_proxies
from bosun.store.base import ApprovalConflict

log = logging.getLogger("bosun.server")
STATIC = Path(__file__).parent / "static"


def create_app(settings: Settings) -> FastAPI:
    """The app; the database is opened and the worker started when it starts serving."""
    proxies = parse_proxies(settings.trusted_proxies)  # a bad entry fails here, at once

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        agents = load_agents(settings.agents)
        runtime = Runtime(
            settings.db,
            lease_seconds=settings.lease_seconds,
            tool_threads=settings.tool_threads,
            embedder=os.environ.get("BOSUN_EMBEDDINGS"),  # vector recall (docs/memory.md)
        )
        await runtime.open()
        state = ServerState(
            settings=settings,
            runtime=runtime,
            agents=agents,
            hub=Hub(runtime.store),
            liveness=Liveness(runtime.store),
            proxies=proxies,
        )
        for agent in agents.values():
            runtime.register(agent)
        runtime.journal.listen(state.hub.listener)
        state.metrics, state.observer = await attach_metrics(runtime)
        if settings.create_first_admin:
            state.first_admin_key = await ensure_first_admin(runtime.store)
        if settings.triggers:
            from bosun.triggers.runner import Triggers

            state.triggers = Triggers.load(runtime, settings.triggers)
            await state.triggers.start(state.stop)
        if settings.workers:
            state.worker = Worker(
                runtime,
                concurrency=settings.worker_concurrency,
                poll_interval=settings.poll_interval,
                shutdown_grace=5.0,
            )
            if state.metrics is not None:
                state.metrics.watch_worker(state.worker)
            state.worker_task = state.worker.start(state.stop)
        app.state.bosun = state
        mount_a2a(app, state)
        state.push = PushDispatcher(
            state,
            allow_loopback=settings.a2a_push_allow_loopback,
            attempts=settings.a2a_push_attempts,
            backoff=settings.a2a_push_backoff,
        )
        runtime.journal.listen(state.push.listener)
        state.push_task = asyncio.create_task(state.push.run(state.stop), name="a2a-push")
        try:
            yield
        finally:
            state.stop.set()
            state.hub.stopping.set()
            if state.triggers is not None:
                await state.triggers.stop()
            if state.worker_task is not None:
                with contextlib.suppress(Exception):
                    await state.worker_task
            if state.push_task is not None:
                state.push.poke()
                with contextlib.suppress(Exception):
                    await state.push_task
            if state.observer is not None:
                await state.observer.close()
            await runtime.close()

    app = FastAPI(
        title="Bosun",
        version=__version__,
        summary="Run AI agents durably, governed and observed: the control plane API.",
        description=(
            "Every endpoint under /api needs an API key sent as `Authorization: Bearer <key>`"
            " (create keys with `bosun keys create`). A key carries a tenant and a role"
            " (viewer, operator, approver, admin, platform); a key only ever sees its own"
            " tenant's data, and only a platform key manages other tenants."
        ),
        lifespan=lifespan,
        docs_url=None,  # Swagger UI and ReDoc load scripts from a CDN: not served
        redoc_url=None,
    )
    app.include_router(api.router)
    app.include_router(hooks.api)
    app.include_router(hooks.hooks)
    app.include_router(hooks.pages)
    app.include_router(memory_api.router)
    app.include_router(metrics_router)
    app.include_router(console.router)
    app.include_router(memory_console.router)
    app.include_router(workflows.api)  # human tasks, a workflow run's graph
    app.include_router(workflows.console)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    # Outermost last: headers on every answer, then the body bound, then who is calling.
    app.add_middleware(A2AWire)
    app.add_middleware(Authenticate)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(SecurityHeaders)

    @app.get("/healthz", response_model=schemas.Health, tags=["health"])
    async def healthz() -> schemas.Health:
        """Liveness: the process answers."""
        return schemas.Health(status="ok")

    @app.get(
        "/readyz",
        response_model=schemas.Ready,
        tags=["health"],
        responses={503: {"model": schemas.Ready, "description": "not ready"}},
    )
    async def readyz(request: Request):
        """Readiness: the database answers and takes writes, and the in-process worker runs.

        `degraded` (503) while the database fails, saying since when and the last error;
        `ok` again by itself once it is back. `unavailable` (503) if the worker is stopped.
        """
        state: ServerState = request.app.state.bosun
        store = state.runtime.store
        database = "ok"
        try:
            await asyncio.wait_for(store.get_run("readyz-probe"), 5)
        except Exception as exc:
            database = f"unreachable: {type(exc).__name__}: {exc or 'no answer in 5 s'}"
        health = state.store_health()
        writes = "ok" if health is None or not health.failing else "failing"
        worker = state.worker_health()
        workers = "ok" if worker is None or worker.state == "running" else worker.state
        if workers == "stopped":
            status = "unavailable"
        elif database != "ok" or writes != "ok" or workers != "ok":
            status = "degraded"
        else:
            status = "ok"
        body = schemas.Ready(
            status=status,
            database=database,
            writes=writes,
            workers=workers,
            store=schemas.StoreReadiness.of(health) if health is not None else None,
            worker=schemas.WorkerReadiness.of(worker, state.worker) if worker else None,
        )
        return JSONResponse(
            body.model_dump(mode="json"), status_code=200 if status == "ok" else 503
        )

    @app.exception_handler(console.LoginRequired)
    async def _login(request: Request, exc: console.LoginRequired):
        return console.login_redirect(request)

    @app.exception_handler(ApprovalConflict)
    async def _conflict(request: Request, exc: ApprovalConflict) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(RunAlreadyFinished)
    async def _finished(request: Request, exc: RunAlreadyFinished) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(RunNotFound)
    async def _not_found(request: Request, exc: RunNotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler echoes the input, which may hold text no encoder takes.
        return JSONResponse({"detail": clean_value(jsonable_encoder(exc.errors()))}, 422)

    @app.exception_handler(EditRefused)
    async def _edit_refused(request: Request, exc: EditRefused) -> JSONResponse:
        status = 422 if exc.rule == "schema" else 403
        return JSONResponse({"detail": str(exc), "rule": exc.rule}, status_code=status)

    @app.exception_handler(StoreError)
    async def _store_failed(request: Request, exc: StoreError) -> JSONResponse:
        """The database failed, not the request: 503 and when to try again, never a 500
        (or a 201 for a write that was not made)."""
        refused = store_unavailable(exc)
        return JSONResponse({"detail": refused.detail}, status_code=503, headers=refused.headers)

    @app.exception_handler(BosunError)
    async def _bosun_error(request: Request, exc: BosunError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    return app
