"""Tools are plain typed functions. `@tool` reads the signature and docstring once:
pydantic builds the JSON schema the model sees and validates the arguments it sends."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, get_type_hints, overload

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from bosun.errors import SpecError
from bosun.spec.definition import SINK_FIELDS, SourceSpec, ToolDefinition
from bosun.spec.sinks import SINK_KIND, checked
from bosun.spec.sources import folder_of, ref_of, resolve_ref
from bosun.spec.vocab import Effect
from bosun.spec.where import SpecModel

# `Effect` is re-exported from here for the modules that import it from the tool layer.
EFFECTS: tuple[str, ...] = tuple(e.value for e in Effect)


class RetryPolicy(SpecModel):
    """Retries when the tool raises. Only idempotent tools may retry (a repeat must be safe)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    field_prefix = "retry"

    max_attempts: int = Field(default=1, ge=1)
    backoff_seconds: float = Field(default=0.5, ge=0)
    backoff_multiplier: float = Field(default=2.0, ge=1)


@dataclass(frozen=True, slots=True)
class ToolContext:
    """Given to a tool that declares a parameter of this type (hidden from the model).

    `idempotency_key` is the same on every attempt of one call, including after a
    crash, so a tool can pass it to a payment API and never charge twice.

    `progress(progress, total=None, message=None)` says how far a long call got (from the
    tool's thread too); the engine journals it coalesced (a `ToolProgress` event), so
    calling it often is cheap. MCP tools report their server's progress notifications
    through it. None outside a run.
    """

    run_id: str
    call_id: str
    idempotency_key: str
    attempt: int
    progress: Callable[..., None] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    fn: Callable[..., Any]
    params: type[BaseModel]
    effect: Effect = Effect.WRITE
    idempotent: bool = False
    timeout: float = 30.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    context_param: str | None = None
    ref: str = ""
    # Governance: whether the output can be trusted (False for e-mails, web pages, anything
    # a third party wrote), the compensating function rollback calls (`module:function`,
    # called as fn(arguments, result)), and fields redacted in every projection.
    trusted: bool = True
    undo: str | None = None
    sensitive: tuple[str, ...] = ()
    # The argument schema a pinned version showed the model (None: built from `params`).
    parameters: dict[str, Any] | None = None
    # Sinks (`bosun.spec.sinks`): the arguments where data goes, what the call changes,
    # how much it moves. Default policy v2 holds a call whose sink the user did not supply.
    egress: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    amounts: tuple[str, ...] = ()

    @functools.cached_property
    def sinks(self) -> dict[str, str]:
        """Each sink argument and its kind (`egress`, `target`, `amount`); {} for none."""
        out: dict[str, str] = {}
        for field_name in SINK_FIELDS:
            for arg in getattr(self, field_name):
                out.setdefault(arg, SINK_KIND[field_name])
        return out

    @functools.cached_property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.fn)

    @functools.cached_property
    def source(self) -> SourceSpec:
        """Where the tool comes from: a Python function is served by the reference to it."""
        return SourceSpec("python", self.ref, {"ref": self.ref})

    def definition(self) -> ToolDefinition:
        """This tool's definition as its source serves it (see `bosun.spec.definition`)."""
        return ToolDefinition(
            name=self.name,
            description=self.description,
            parameters=self.schema()["function"]["parameters"],
            effect=self.effect,
            idempotent=self.idempotent,
            trusted=self.trusted,
            source_kind=self.source.kind,
            source_id=self.source.identity,
            egress=self.egress,
            targets=self.targets,
            amounts=self.amounts,
        )

    @functools.cached_property
    def _schema(self) -> dict[str, Any]:
        return self.schema_uncached()

    def schema(self) -> dict[str, Any]:
        """The OpenAI function-tool schema (built once per tool)."""
        return self._schema

    def schema_uncached(self) -> dict[str, Any]:
        if self.parameters is not None:
            params = self.parameters
        else:
            params = self.params.model_json_schema()
            params.pop("title", None)
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": params},
        }

    def declaration(self) -> dict[str, Any]:
        """What a run pins about this tool (journaled with the agent version)."""
        decl = {
            "name": self.name,
            "ref": self.ref,
            "effect": self.effect,
            "idempotent": self.idempotent,
            "timeout": self.timeout,
            "retry": self.retry.model_dump(),
            "trusted": self.trusted,
            "undo": self.undo,
            "sensitive": list(self.sensitive),
            # What the model is shown, pinned: a run never sees a later description.
            "description": self.description,
            "parameters": self.schema()["function"]["parameters"],
        }
        for field_name in SINK_FIELDS:  # only when declared: older versions keep their ids
            if getattr(self, field_name):
                decl[field_name] = list(getattr(self, field_name))
        return decl

    def validate(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """Validated keyword arguments, or `ValidationError` (which goes back to the model)."""
        return dict(self.params.model_validate(arguments).__dict__)  # the fields, by name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)


def replayable(tool: Tool) -> bool:
    """Whether running the call again after a crash is harmless by its declaration: an
    idempotent read. Its result may then share the next commit (the step loop commits once
    a step for such calls; a crash before that commit runs the read again, with the same
    idempotency key, as a crash during the call always did). Writes keep a commit of their
    own, so what they did is never in doubt."""
    return tool.effect == Effect.READ and tool.idempotent


def make_tool(
    fn: Callable[..., Any],
    *,
    name: str | None = None,
    description: str | None = None,
    effect: Effect = Effect.WRITE,
    idempotent: bool = False,
    timeout: float = 30.0,
    retry: RetryPolicy | dict[str, Any] | None = None,
    trusted: bool = True,
    undo: str | Callable[..., Any] | None = None,
    sensitive: tuple[str, ...] | list[str] = (),
    egress: tuple[str, ...] | list[str] = (),
    targets: tuple[str, ...] | list[str] = (),
    amounts: tuple[str, ...] | list[str] = (),
) -> Tool:
    if effect not in EFFECTS:
        raise SpecError(f"tool {fn.__qualname__}: effect must be one of {EFFECTS}, got {effect!r}")
    retry = RetryPolicy(**retry) if isinstance(retry, dict) else retry or RetryPolicy()
    if retry.max_attempts > 1 and not idempotent:
        raise SpecError(
            f"tool {fn.__qualname__}: retries need idempotent=True "
            "(a non-idempotent call must never run twice)"
        )
    if timeout <= 0:
        raise SpecError(f"tool {fn.__qualname__}: timeout must be positive, got {timeout}")
    hints = get_type_hints(fn)
    fields: dict[str, Any] = {}
    context_param = None
    for pname, param in inspect.signature(fn).parameters.items():
        annotation = hints.get(pname, Any)
        if annotation is ToolContext:
            context_param = pname
            continue
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise SpecError(f"tool {fn.__qualname__}: *args and **kwargs cannot be described")
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[pname] = (annotation, default)
    tool_name = name or fn.__name__
    sinks: dict[str, tuple[str, ...]] = {}
    for field_name, names in (("egress", egress), ("targets", targets), ("amounts", amounts)):
        if isinstance(names, str) or not all(isinstance(n, str) for n in names):
            raise SpecError(
                f"tool {tool_name}: `{field_name}` is a list of argument names, e.g. "
                f'{field_name}=("to",); got {names!r}'
            )
        sinks[field_name] = tuple(names)
    checked(f"tool {tool_name}", fields, sinks)
    params = create_model(  # type: ignore[call-overload]
        f"{tool_name}_args", __config__=ConfigDict(extra="forbid"), **fields
    )
    doc = inspect.getdoc(fn) or ""
    return Tool(
        name=tool_name,
        description=description or doc.strip() or tool_name,
        fn=fn,
        params=params,
        effect=effect,
        idempotent=idempotent,
        timeout=timeout,
        retry=retry,
        context_param=context_param,
        ref=ref_of(fn),
        trusted=trusted,
        undo=_undo_ref(fn, undo),
        sensitive=tuple(sensitive),
        **sinks,
    )


def _undo_ref(fn: Callable[..., Any], undo: str | Callable[..., Any] | None) -> str | None:
    """The undo as a reference; one written as text is relative to the tool's own file."""
    if undo is None:
        return None
    if isinstance(undo, str):
        return resolve_ref(undo, folder_of(fn))
    return ref_of(getattr(undo, "fn", undo))


@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...
@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    effect: Effect = Effect.WRITE,
    idempotent: bool = False,
    timeout: float = 30.0,
    retry: RetryPolicy | dict[str, Any] | None = None,
    trusted: bool = True,
    undo: str | Callable[..., Any] | None = None,
    sensitive: tuple[str, ...] | list[str] = (),
    egress: tuple[str, ...] | list[str] = (),
    targets: tuple[str, ...] | list[str] = (),
    amounts: tuple[str, ...] | list[str] = (),
) -> Callable[[Callable[..., Any]], Tool]: ...
def tool(fn: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Declare a tool: `@tool` or `@tool(effect="irreversible", idempotent=False, timeout=10)`.

    Governance options: `trusted=False` for output a third party wrote (policies can
    require approval after a run read it), `undo=compensate` for rollback, and
    `sensitive=["card_number"]` to redact those argument/result fields in projections.

    Sinks (`bosun.spec.sinks`): `egress=("to",)` (where data goes), `targets=("file_id",)`
    (what the call changes or deletes), `amounts=("amount",)`; the default policy holds a
    call whose sink value came from untrusted content, or from nowhere, unless the user
    asked for it (docs/governance.md).

    The default effect is `write`: say `read` for lookups so governance can let them through.
    """
    if fn is not None:
        return make_tool(fn, **options)
    return lambda f: make_tool(f, **options)


__all__ = [
    "EFFECTS",
    "Effect",
    "RetryPolicy",
    "Tool",
    "ToolContext",
    "ValidationError",
    "replayable",
    "tool",
]
