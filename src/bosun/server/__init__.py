"""The control plane: HTTP API, authentication and the web console (`bosun serve`).

Start it with `bosun serve`; build the ASGI app yourself with `bosun.server.app.create_app`.
(Nothing is imported here, so the rest of the `bosun` command starts without the web stack.)
"""
