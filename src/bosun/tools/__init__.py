"""Tool sources and execution. Tool *definitions* live in `bosun.spec`.

Importing the package registers the built-in source kinds (`python`, `mcp`, `agent`, `a2a`); other kinds
register themselves with `register_source_kind` (see docs/tools.md).
"""

from bosun.tools import a2a as _a2a  # noqa: F401  (registers the `a2a` kind)
from bosun.tools import agents as _agents  # noqa: F401  (registers the `agent` kind)
from bosun.tools import mcp as _mcp  # noqa: F401  (registers the `mcp` kind)
from bosun.tools import python as _python  # noqa: F401  (registers the `python` kind)
from bosun.tools.execute import ToolOutcome, execute_tool
from bosun.tools.sources import SourcePool, ToolSource, register_source_kind, source_kinds

__all__ = [
    "SourcePool",
    "ToolOutcome",
    "ToolSource",
    "execute_tool",
    "register_source_kind",
    "source_kinds",
]
