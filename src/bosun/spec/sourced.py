"""Tools whose code is not Python in this process: served by a source (an MCP server today;
other Bosun agents and A2A agents next) and described only by what the source served.

A `SourcedTool` is a `Tool` in every way the engine and governance rely on (name, effect,
idempotency, timeout, retries, trust, the schema the model is shown), but it has no
function to import: a call always goes to its source through `SourcePool.invoke`, its
arguments are checked against the JSON schema the source served (not a pydantic model
built from type hints), and a pinned version rebuilds it from its declaration alone
(`from_declaration`), so a worker needs no code of it, only the source's kind.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, create_model

from bosun.errors import SourceUnavailable, SpecError
from bosun.spec.definition import SINK_FIELDS, SourceSpec, ToolDefinition
from bosun.spec.sinks import checked, properties_of
from bosun.spec.tool import RetryPolicy, Tool
from bosun.spec.vocab import Effect


def _served_elsewhere(**_: Any) -> Any:
    """A sourced tool has no local function: its calls go to its source."""
    raise SourceUnavailable("this tool is served by its source; call it through the SourcePool")


# Arguments are validated against the served JSON schema (`SourcedTool.validate`); this
# model only fills `Tool.params` for code that expects one.
_ANY_ARGUMENTS: type[BaseModel] = create_model(  # type: ignore[call-overload]
    "sourced_tool_args", __config__=ConfigDict(extra="allow")
)


@dataclass(frozen=True)
class SourcedTool(Tool):
    """A tool served by a non-Python source (see the module docstring)."""

    served: ToolDefinition | None = None
    source_spec: SourceSpec | None = field(default=None, compare=False)

    @property
    def is_async(self) -> bool:  # no thread: the call is I/O to the source
        return True

    @property
    def source(self) -> SourceSpec:
        assert self.source_spec is not None, "a SourcedTool needs its source_spec"
        return self.source_spec

    def definition(self) -> ToolDefinition:
        assert self.served is not None, "a SourcedTool needs the definition it was served"
        return self.served

    def declaration(self) -> dict[str, Any]:
        """What a version pins: the agent's settings, the source that serves the tool (with
        the settings needed to open it; never a secret, only the names of environment
        variables that hold them) and the served definition with its digest."""
        spec = self.source
        return {
            **super().declaration(),
            "source": {"kind": spec.kind, "id": spec.identity, "config": spec.config},
            "definition": self.definition().canonical(),
            "digest": self.definition().digest,
        }

    @functools.cached_property
    def _validator(self) -> Any:
        """A validator of the served schema, or None when the schema itself is not valid
        JSON Schema (then the source, which served it, is left to judge the arguments)."""
        from jsonschema import Draft202012Validator, SchemaError, validators

        schema = self.parameters if self.parameters is not None else {"type": "object"}
        cls = validators.validator_for(schema, default=Draft202012Validator)
        try:
            cls.check_schema(schema)
        except SchemaError:
            return None
        return cls(schema)

    def validate(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """The arguments as sent, or `ValueError` naming each field that does not fit the
        served schema (which goes back to the model, as a pydantic error does)."""
        validator = self._validator
        if validator is None:
            return dict(arguments)
        try:
            errors = sorted(validator.iter_errors(arguments), key=lambda e: list(e.path))
        except Exception:  # a schema it cannot apply here (an unresolvable $ref): the source judges
            return dict(arguments)
        if errors:
            raise ValueError(
                "; ".join(
                    f"{'.'.join(str(p) for p in e.path) or 'arguments'}: {e.message}"
                    for e in errors[:5]
                )
            )
        return dict(arguments)

    @classmethod
    def from_declaration(cls, decl: dict[str, Any]) -> SourcedTool:
        """The tool a pinned version declared, rebuilt with no import and no I/O."""
        source = decl["source"]
        return cls(
            name=decl["name"],
            description=decl["description"],
            fn=_served_elsewhere,
            params=_ANY_ARGUMENTS,
            effect=Effect(decl["effect"]),
            idempotent=decl["idempotent"],
            timeout=decl["timeout"],
            retry=RetryPolicy(**decl["retry"]),
            ref="",
            trusted=decl.get("trusted", False),
            sensitive=tuple(decl.get("sensitive", ())),
            parameters=decl.get("parameters"),
            served=ToolDefinition.from_canonical(decl["definition"]),
            source_spec=SourceSpec(source["kind"], source["id"], source.get("config") or {}),
            egress=tuple(decl.get("egress", ())),
            targets=tuple(decl.get("targets", ())),
            amounts=tuple(decl.get("amounts", ())),
        )


def sourced_tool(
    definition: ToolDefinition,
    spec: SourceSpec,
    *,
    name: str,
    effect: Effect,
    idempotent: bool,
    timeout: float,
    retry: RetryPolicy,
    trusted: bool,
    sensitive: tuple[str, ...] = (),
    sinks: dict[str, tuple[str, ...]] | None = None,
) -> SourcedTool:
    """A `SourcedTool` for a definition a source served, with the agent's settings. `sinks`
    (`egress`/`targets`/`amounts`: argument names) are the agent's; None takes the
    served definition's."""
    if retry.max_attempts > 1 and not idempotent:
        raise SpecError(
            f"tool {name}: retries need it to be idempotent (a non-idempotent call must "
            "never run twice)"
        )
    if timeout <= 0:
        raise SpecError(f"tool {name}: timeout must be positive, got {timeout}")
    if sinks is None:
        sinks = {f: getattr(definition, f) for f in SINK_FIELDS}
    checked(f"tool {name}", properties_of(definition.parameters), sinks)
    return SourcedTool(
        name=name,
        description=definition.description,
        fn=_served_elsewhere,
        params=_ANY_ARGUMENTS,
        effect=effect,
        idempotent=idempotent,
        timeout=timeout,
        retry=retry,
        ref="",
        trusted=trusted,
        sensitive=sensitive,
        parameters=definition.parameters,
        served=definition,
        source_spec=spec,
        **{f: tuple(v) for f, v in sinks.items()},
    )


__all__ = ["SourcedTool", "sourced_tool"]
