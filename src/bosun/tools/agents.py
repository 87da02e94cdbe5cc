"""The `agent` tool source kind: other Bosun agents, each served as one tool.

An agent tool (`bosun.spec.agent_tool`) pins its child agent whole, in the parent's version,
so this source has nothing live to connect to: `discover` serves exactly the definition that
was pinned (the rug-pull check always agrees; changing the child is a new parent version),
and a call never reaches `invoke`, because the engine itself starts the child run and parks
the call on it (`bosun.engine.agent_calls`): a child run needs the Runtime, its store and
its journal writer, which a source does not have.
"""

from __future__ import annotations

from typing import Any

from bosun.errors import SourceUnavailable
from bosun.spec.agent_tool import KIND
from bosun.spec.definition import SourceSpec, ToolDefinition
from bosun.tools.sources import Call, register_source_kind


class AgentSource:
    """Serves the one pinned definition of an agent tool (see the module docstring)."""

    def __init__(self, spec: SourceSpec):
        self.spec = spec

    async def open(self) -> None:
        if "definition" not in self.spec.config:
            raise SourceUnavailable(
                f"agent tool source {self.spec.identity}: its pinned definition is missing;"
                " register the parent agent again"
            )

    async def discover(self) -> list[ToolDefinition]:
        return [ToolDefinition.from_canonical(self.spec.config["definition"])]

    async def invoke(self, name: str, arguments: dict[str, Any], call: Call) -> Any:
        raise SourceUnavailable(
            f"agent tool {name} is called by the engine (it starts a child run), not through"
            " its source"
        )

    async def close(self) -> None:
        return None


register_source_kind(KIND, AgentSource)

__all__ = ["AgentSource"]
