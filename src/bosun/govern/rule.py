"""One policy rule: filters, a CEL condition, an effect; and its compiled, matching form.

The condition (`when`) is CEL over the variables of `ActionContext.as_cel()`.
It is compiled when the rule is created: a syntax error, or a variable that
does not exist, is a validation error naming the rule.
"""

from __future__ import annotations

import fnmatch
import json
import re
import sys
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bosun.govern.decision import ActionContext, Autonomy, Decision, Verdict
from bosun.spec.tool import Effect


def _import_cel() -> types.ModuleType:
    """The CEL evaluator (the `common-expression-language` package).

    Its package `__init__` also imports its interactive shell, `cel.cli` (typer, rich,
    prompt_toolkit: about a quarter of a second, at the start of every `bosun` command that
    reads a policy). Bosun uses only the evaluator, so unless something imported the shell
    already, an empty module stands in for it.
    """
    if "cel" not in sys.modules and "cel.cli" not in sys.modules:
        sys.modules["cel.cli"] = types.ModuleType("cel.cli", "not loaded by Bosun")
    import cel

    return cel


cel = _import_cel()

#: The variables a `when` condition may read (see `ActionContext`).
CEL_VARIABLES: tuple[str, ...] = tuple(
    ActionContext(agent="", tool="", effect="", autonomy="", args={}).as_cel()
)
#: Map variables a context holds only the read keys of (see `keys_read`).
MAP_VARIABLES: tuple[str, ...] = ("args", "tags")
#: Effects whose rule counts as matched when its condition fails (fail closed).
FAIL_CLOSED: tuple[str, ...] = ("deny", "require_approval", "review")

compile_cel = lru_cache(maxsize=4096)(cel.compile)
_COMPREHENSION = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_]\w*)")
_CEL_ERROR = re.compile(r"<input>:(\d+):(\d+): (.*)")


def _cel_syntax_message(exc: Exception) -> str:
    text = str(exc)
    found = _CEL_ERROR.search(text)
    if not found:
        return text.splitlines()[0] if text else type(exc).__name__
    line, column, problem = found.groups()
    where = f"column {column}" if line == "1" else f"line {line}, column {column}"
    return f"{problem} (at {where} of the condition)"


def keys_read(source: str, var: str) -> frozenset[str] | None:
    """The keys of map `var` a condition reads (`args.amount`, `args['amount']`), or None
    when it may read the whole map (`size(args)`, `'x' in args`, `args.size()`).

    A decision's CEL context then holds only those keys: converting values to CEL
    is the costly part of a decision, and a tool's arguments can be large.
    """
    name = rf"(?<![\w.]){var}\s*"
    dotted = re.compile(name + r"\.\s*([A-Za-z_]\w*)\b(?!\s*\()")
    indexed = re.compile(name + r"\[\s*(?:'([^'\\]*)'|\"([^\"\\]*)\")\s*\]")
    keys = set(dotted.findall(source)) | {a or b for a, b in indexed.findall(source)}
    rest = indexed.sub("", dotted.sub("", source))
    if re.search(rf"(?<![\w.]){var}(?!\w)", rest):
        return None
    return frozenset(keys)


def as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


class Rule(BaseModel):
    """One policy rule. Filters left out match everything; `when` is a CEL condition."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    agents: tuple[str, ...] | None = None
    tools: tuple[str, ...] | None = None
    effects: tuple[Effect, ...] | None = None
    autonomy: tuple[Autonomy, ...] | None = None
    # Only tools that declare sinks (`egress`/`targets`/`amounts`) or only those that do not.
    has_sinks: bool | None = None
    when: str | None = None
    effect: Verdict
    approver_role: str = Field(default="approver", min_length=1)
    expires_after: float | None = Field(default=None, gt=0)
    on_expiry: Literal["deny", "escalate"] = "deny"
    escalate_to: str | None = None
    # `review: agent:qa`: a reviewer agent (one of the agent's `reviewers`) decides first.
    review: str | None = Field(default=None, min_length=1)
    reason: str = ""

    @model_validator(mode="before")
    @classmethod
    def _review_effect(cls, value: Any) -> Any:
        """`review: agent:qa` is short for `effect: review, review: qa`."""
        if isinstance(value, dict) and value.get("review") is not None:
            value = dict(value)
            value.setdefault("effect", "review")
            if isinstance(value["review"], str) and value["review"].startswith("agent:"):
                value["review"] = value["review"][len("agent:") :]
        return value

    @field_validator("agents", "tools", "effects", "autonomy", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        """`tools: issue_refund` is short for `tools: [issue_refund]`."""
        return as_list(value)

    @field_validator("agents", "tools", "effects", "autonomy")
    @classmethod
    def _not_empty(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and not value:
            raise ValueError("an empty list matches nothing; leave the field out to match all")
        return value

    @field_validator("when")
    @classmethod
    def _compiles(cls, value: str | None, info: Any) -> str | None:
        if value is None:
            return None
        rule = f"rule {info.data.get('name', '?')!r}"
        if not value.strip():
            raise ValueError(f"{rule}: `when` is empty; leave it out to match always")
        try:
            program = compile_cel(value)
        except Exception as exc:  # the CEL parser reports syntax errors as ValueError
            raise ValueError(
                f"{rule}: `when` is not valid CEL: {_cel_syntax_message(exc)}"
            ) from None
        bound = set(_COMPREHENSION.findall(value))
        unknown = sorted(set(program.variables()) - set(CEL_VARIABLES) - bound)
        if unknown:
            raise ValueError(
                f"{rule}: `when` uses unknown variable {', '.join(map(repr, unknown))}; "
                f"the variables are {', '.join(CEL_VARIABLES)}"
            )
        return value

    @model_validator(mode="after")
    def _reviewer(self) -> Rule:
        if self.effect == "review" and self.review is None:
            raise ValueError(
                f"rule {self.name!r}: `effect: review` needs `review: agent:NAME`, the reviewer"
                " agent (one of the agent's `reviewers`)"
            )
        if self.review is not None and self.effect != "review":
            raise ValueError(
                f"rule {self.name!r}: `review` sends calls to a reviewer, so the rule's effect"
                f" is `review`, not {self.effect} (leave `effect` out)"
            )
        return self

    @model_validator(mode="after")
    def _approval_fields(self) -> Rule:
        approval_only = {"approver_role", "expires_after", "on_expiry", "escalate_to"}
        used = sorted(approval_only & self.model_fields_set)
        if self.effect != "require_approval" and used:
            raise ValueError(
                f"rule {self.name!r}: {', '.join(used)} only apply to "
                f"`effect: require_approval` (this rule's effect is {self.effect})"
            )
        if self.on_expiry == "escalate" and not self.escalate_to:
            raise ValueError(f"rule {self.name!r}: `on_expiry: escalate` needs `escalate_to`")
        if self.escalate_to and self.on_expiry != "escalate":
            raise ValueError(f"rule {self.name!r}: `escalate_to` needs `on_expiry: escalate`")
        if self.on_expiry == "escalate" and self.expires_after is None:
            raise ValueError(
                f"rule {self.name!r}: `on_expiry: escalate` needs `expires_after` (seconds)"
            )
        return self


class Patterns:
    """fnmatch globs; exact names are looked up in a set."""

    __slots__ = ("exact", "globs", "patterns")

    def __init__(self, patterns: Iterable[str]):
        self.patterns = tuple(patterns)
        self.exact = frozenset(p for p in self.patterns if not is_glob(p))
        self.globs = tuple(p for p in self.patterns if is_glob(p))

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        return name in self.exact or any(fnmatch.fnmatchcase(name, g) for g in self.globs)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.patterns)

    def __repr__(self) -> str:
        return f"[{', '.join(self.patterns)}]"


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A rule ready to match: pattern sets, the CEL program, the decision it makes."""

    rule: Rule
    layer: Literal["default", "policy"]
    agents: Patterns | None
    tools: Patterns | None
    effects: frozenset[str] | None
    autonomy: frozenset[str] | None
    has_sinks: bool | None
    program: Any  # cel.Program, or None without a condition
    variables: frozenset[str]
    keys: tuple[tuple[str, frozenset[str] | None], ...]  # args/tags: see keys_read
    decision: Decision

    @classmethod
    def of(cls, rule: Rule, layer: Literal["default", "policy"], version: str) -> CompiledRule:
        program = compile_cel(rule.when) if rule.when else None
        variables = frozenset(program.variables()) & set(CEL_VARIABLES) if program else frozenset()
        return cls(
            rule=rule,
            layer=layer,
            agents=Patterns(rule.agents) if rule.agents else None,
            tools=Patterns(rule.tools) if rule.tools else None,
            effects=frozenset(rule.effects) if rule.effects else None,
            autonomy=frozenset(rule.autonomy) if rule.autonomy else None,
            has_sinks=rule.has_sinks,
            program=program,
            variables=variables,
            keys=tuple(
                (var, keys_read(rule.when or "", var)) for var in MAP_VARIABLES if var in variables
            ),
            decision=_decision(rule, version, rule.reason or f"policy rule {rule.name}"),
        )

    def failed_closed(self, error: str) -> Decision:
        """The decision of a deny/require_approval rule whose condition failed."""
        reason = (
            f"{self.decision.reason} (its condition failed: {error}; "
            f"a {self.rule.effect} rule fails closed)"
        )
        return _decision(self.rule, self.decision.policy_version, reason)

    def filter_miss(self, ctx: ActionContext) -> str | None:
        """Why the agent/tool/effect/autonomy filters do not match, or None when they do."""
        if self.agents is not None and ctx.agent not in self.agents:
            return f"agent {ctx.agent!r} is not in {self.agents!r}"
        if self.tools is not None and ctx.tool not in self.tools:
            return f"tool {ctx.tool!r} is not in {self.tools!r}"
        if self.effects is not None and ctx.effect not in self.effects:
            return f"effect {ctx.effect!r} is not in [{', '.join(self.rule.effects or ())}]"
        if self.autonomy is not None and ctx.autonomy not in self.autonomy:
            return f"autonomy {ctx.autonomy!r} is not in [{', '.join(self.rule.autonomy or ())}]"
        if self.has_sinks is not None and ctx.declares_sinks != self.has_sinks:
            return f"tool {ctx.tool!r} {'declares no' if self.has_sinks else 'declares'} sinks"
        return None

    def evaluate(self, env: Any) -> tuple[bool, str | None]:
        """(condition true, error); `env` is a cel.Context, or the error building one."""
        if self.program is None:
            return True, None
        if isinstance(env, Exception):
            return False, f"the action's variables cannot be given to CEL: {env}"
        try:
            result = self.program.execute(env)
        except KeyError as exc:
            return False, f"no key {exc}"
        except Exception as exc:  # CEL reports evaluation errors as assorted exception types
            return False, f"{type(exc).__name__}: {exc}"
        if result is True or result is False:
            return result, None
        return False, f"the condition gave {result!r}, not true or false"


def _decision(rule: Rule, version: str, reason: str) -> Decision:
    if rule.effect == "review":
        return Decision("review", rule.name, reason, version, reviewer=rule.review)
    if rule.effect != "require_approval":
        return Decision(rule.effect, rule.name, reason, version)
    return Decision(
        "require_approval",
        rule.name,
        reason,
        version,
        approver_role=rule.approver_role,
        expires_after=rule.expires_after,
        on_expiry=rule.on_expiry,
        escalate_to=rule.escalate_to,
    )


def first_match(candidates: Iterable[CompiledRule], env: Any) -> Decision | None:
    """The decision of the first rule that matches (failing closed where it must)."""
    for compiled in candidates:
        matched, error = compiled.evaluate(env)
        if matched:
            return compiled.decision
        if error is not None and compiled.rule.effect in FAIL_CLOSED:
            return compiled.failed_closed(error)
    return None


def cel_context(
    ctx: ActionContext, variables: Iterable[str], keys: Mapping[str, frozenset[str] | None]
) -> Any:
    """One CEL context for all of a decision's conditions: just the variables they read.

    Returns the exception instead when the values cannot be given to CEL at all.
    """
    values = ctx.as_cel()
    chosen = {name: values[name] for name in variables}
    for var, read in keys.items():
        if read is not None:
            whole = chosen[var]
            chosen[var] = {k: whole[k] for k in read if k in whole}
    try:
        return cel.Context(chosen)
    except (ValueError, TypeError):
        # Values CEL has no type for (dates, custom objects): use their JSON form.
        chosen = json.loads(json.dumps(chosen, default=str))
        try:
            return cel.Context(chosen)
        except (ValueError, TypeError) as exc:
            return exc


__all__ = ["CEL_VARIABLES", "FAIL_CLOSED", "CompiledRule", "Patterns", "Rule"]
