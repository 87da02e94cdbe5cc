"""What a trigger starts: an agent file or a workflow file, through one function.

A workflow is a Bosun agent (`bosun.workflow`: `load_workflow(path).agent`, its input the
workflow input as JSON text), so both kinds start with `Runtime.submit(agent, input,
key=)`: the key from the event's id makes a redelivery return the first run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import yaml

from bosun.engine.runtime import Runtime
from bosun.errors import InputMappingFailed, SpecError
from bosun.spec.agent import Agent
from bosun.spec.loader import load_agent
from bosun.spec.media import Media


@dataclass
class Target:
    """A loaded target: the agent (a workflow's own agent for a workflow file), its kind,
    and the compiled jq program mapping an event's payload to the run's input."""

    path: str
    kind: str  # "agent" | "workflow"
    agent: Agent
    expression: str = "."
    _program: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        import jq

        try:
            self._program = jq.compile(self.expression)
        except ValueError as exc:
            raise SpecError(f"input expression {self.expression!r} is not jq: {exc}") from None

    def input_of(self, payload: Any) -> str:
        """The run's input: the jq expression's first result over `payload`; text as it is
        for an agent, JSON for a workflow (and for an agent given an object)."""
        try:
            results = self._program.input_value(payload).all()
        except ValueError as exc:
            raise InputMappingFailed(f"input expression {self.expression!r}: {exc}") from None
        if not results:
            raise InputMappingFailed(f"input expression {self.expression!r} gave no value")
        value = results[0]
        if self.kind == "agent" and isinstance(value, str):
            return value
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    async def submit(
        self,
        rt: Runtime,
        payload: Any,
        *,
        key: str,
        tenant: str,
        tags: dict[str, str],
        attachments: list[Media] | None = None,
    ) -> str:
        """Start (or find again, by `key`) the run of this target for one event."""
        return await self.start(
            rt, self.input_of(payload), key=key, tenant=tenant, tags=tags, attachments=attachments
        )

    async def start(
        self,
        rt: Runtime,
        text: str,
        *,
        key: str,
        tenant: str,
        tags: dict[str, str],
        attachments: list[Media] | None = None,
    ) -> str:
        """`submit` with the input already mapped."""
        return await rt.submit(
            self.agent,
            text,
            key=key,
            tenant=tenant,
            tags=tags,
            attachments=attachments or (),
        )


def is_workflow(path: str) -> bool:
    """A Serverless Workflow document (`document:` with `dsl:` at the top), not an agent."""
    if not path.endswith((".yaml", ".yml", ".json")):
        return False
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and isinstance(data.get("document"), dict)


def load_target(path: str, expression: str = ".") -> Target:
    """The agent or workflow at `path`, ready to start runs of."""
    if is_workflow(path):
        try:
            from bosun.workflow import load_workflow  # type: ignore[import-not-found]
        except ImportError:
            raise SpecError(
                f"{path} is a workflow, and this Bosun has no workflow support (bosun.workflow)"
            ) from None
        return Target(path, "workflow", load_workflow(path).agent, expression)
    return Target(path, "agent", load_agent(path), expression)
