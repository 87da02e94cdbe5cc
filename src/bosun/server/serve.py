"""`bosun serve`: one process serving the HTTP API and the console, with workers in-process."""

from __future__ import annotations

import asyncio
import sys

import uvicorn

from bosun.server.app import create_app
from bosun.server.state import Settings


class _Server(uvicorn.Server):
    """Ends the live streams first, so shutting down does not wait for browsers to leave."""

    async def shutdown(self, sockets=None) -> None:
        state = getattr(self.config.app, "state", None)
        bosun = getattr(state, "bosun", None) if state is not None else None
        if bosun is not None:
            bosun.stop.set()
        await super().shutdown(sockets)


def build_server(settings: Settings, host: str, port: int, *, log_level: str = "warning"):
    settings.host = host
    if settings.public_url is None:
        settings.public_url = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=5,
        lifespan="on",
        # The client's address is ours to decide (`auth.client_ip`, `--trusted-proxy`):
        # uvicorn would otherwise believe X-Forwarded-For from 127.0.0.1, i.e. anyone local.
        proxy_headers=False,
        server_header=False,
    )
    return app, _Server(config)


async def serve(settings: Settings, host: str, port: int) -> int:
    app, server = build_server(settings, host, port, log_level="info")
    task = asyncio.create_task(server.serve())
    while not server.started and not task.done():
        await asyncio.sleep(0.05)
    if task.done():
        await task
        return 2
    state = app.state.bosun
    url = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
    agents = ", ".join(sorted(state.agents)) or "none (add --agent FILE)"
    print(f"bosun serve: console {url}/  API {url}/api  OpenAPI {url}/openapi.json", flush=True)
    print(f"database {state.runtime.store.url}; agents: {agents}", flush=True)
    if state.first_admin_key:
        print(
            "\nNew database: created the first key, a platform key (tenant default) that can"
            " create the keys of every tenant. It is shown only this once; store it now:"
            f"\n\n    {state.first_admin_key}\n\n"
            f"Log in at {url}/login with it, or send it as `Authorization: Bearer <key>`.\n",
            flush=True,
        )
    await task
    return 0


def main_serve(settings: Settings, host: str, port: int) -> int:
    try:
        try:
            import uvloop  # `uvicorn[standard]`: a faster event loop, when installed
        except ImportError:
            return asyncio.run(serve(settings, host, port))
        return uvloop.run(serve(settings, host, port))
    except KeyboardInterrupt:
        return 130
    finally:
        sys.stdout.flush()
