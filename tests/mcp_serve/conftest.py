"""A real `bosun mcp serve --http` per test module (see mcp_serve_helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from mcp_serve_helpers import Served, agent_args, start, stop


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[Served]:
    db = str(tmp_path_factory.mktemp("mcp-serve") / "bosun.db")
    proc, url = start(db, *agent_args())
    try:
        yield Served(url, db)
    finally:
        stop(proc)
