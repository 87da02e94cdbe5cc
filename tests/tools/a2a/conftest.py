"""Fixtures of the A2A client tests: the reference A2A server, the worker's credential."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from a2a_client_servers import TOKEN, RefServer


@pytest.fixture
def ref_server(tmp_path) -> Iterator[RefServer]:
    server = RefServer(tmp_path / "remote", token=TOKEN)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def token_env(monkeypatch) -> str:
    monkeypatch.setenv("REF_A2A_TOKEN", TOKEN)
    return "REF_A2A_TOKEN"
