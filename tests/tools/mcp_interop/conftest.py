"""Fixtures of the interop tests: server-everything over Streamable HTTP (a subprocess
per test module; the servers themselves: `interop_servers.py`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from interop_servers import EverythingHttp


@pytest.fixture(scope="module")
def everything_http() -> Iterator[EverythingHttp]:
    server = EverythingHttp()
    server.start()
    try:
        yield server
    finally:
        server.stop()
