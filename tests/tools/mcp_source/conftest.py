"""Fixtures of the MCP client's tests (the servers themselves: `mcp_servers.py`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp_servers import fault_dir_fixture


@pytest.fixture
def fault_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The fault server's state folder, passed to it through its `env` allow-list."""
    return fault_dir_fixture(tmp_path, monkeypatch)
