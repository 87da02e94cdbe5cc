"""A real `bosun serve` per test module: the support demo agent and the test agents, on a
SQLite file in a temporary folder (see server_helpers.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from server_helpers import Running, start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Running]:
    folder = tmp_path_factory.mktemp("serve")
    saved = os.environ.get("SUPPORT_DATA_DIR")
    os.environ["SUPPORT_DATA_DIR"] = str(folder / "support-data")  # the demo's ledger
    running, stop = start_server(str(folder / "bosun.db"))
    try:
        yield running
    finally:
        stop()
        if saved is None:
            os.environ.pop("SUPPORT_DATA_DIR", None)
        else:
            os.environ["SUPPORT_DATA_DIR"] = saved
