"""Policies: ordered rules that decide what happens to each proposed tool call.

A decision is made in three layers:

1. Built-in safety: a tool the agent does not have (`builtin:unknown-tool`), an
   effect class other than read/write/irreversible (`builtin:unknown-effect`)
   and a tool the policy's `visibility` hides from the agent
   (`builtin:not-visible`) are denied. Nothing overrides these.
2. The default rules of the policy's `profile` (`bosun.govern.defaults`: `default`,
   `strict` or `legacy`), unless `include_defaults: false`.
3. The policy's own rules, in order: the first rule that matches decides; when
   none matches, `default_effect` does.

Layers 2 and 3 are both evaluated and the stricter verdict wins
(deny > shadow > require_approval > notify > allow); on a tie the policy's own
rule decides, so its approver role and expiry apply. The defaults can thus only
tighten a policy, never loosen it.

A rule matches when every filter it sets matches (agents, tools: fnmatch globs;
effects; autonomy) and its `when` condition (CEL, see `bosun.govern.rule`) is
true. A condition that fails at evaluation (a missing key, a type error) does
not match and the explanation says why, except in a `deny` or
`require_approval` rule: there an error counts as a match (fail closed), so a
typo or a missing argument never silently lets an action through.

Speed: rules are pre-filtered by agent, tool, effect and autonomy once per
combination (an index by tool name, then a cache), and one CEL context holding
only the variables (and argument keys) the remaining conditions read is built
per decision and shared by them.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from bosun.errors import SpecError
from bosun.govern.decision import ActionContext, Decision, Verdict
from bosun.govern.defaults import PROFILES
from bosun.govern.rule import (
    CEL_VARIABLES,
    FAIL_CLOSED,
    CompiledRule,
    Patterns,
    Rule,
    as_list,
    cel_context,
    first_match,
    is_glob,
)
from bosun.spec import yaml_lines
from bosun.spec.tool import EFFECTS
from bosun.spec.vocab import Profile

#: How strict each verdict is; the stricter of the defaults' and the rules' verdicts wins.
STRICTNESS: dict[str, int] = {
    "allow": 0,
    "notify": 1,
    "review": 2,  # an agent's review is weaker than a person's approval
    "require_approval": 3,
    "shadow": 4,
    "deny": 5,
}
RESERVED_PREFIXES = ("builtin:", "default:", "autonomy:")
MAX_PLANS = 10_000


class PolicyWarning(UserWarning):
    """A policy that is valid but probably not what was meant (see `Policy.unknown_tools`)."""


@dataclass(frozen=True, slots=True)
class RuleResult:
    """What one rule made of one action, for `Policy.explain` and `bosun policy check`.

    `outcome`: `matched`; `skipped` (an agent/tool/effect/autonomy filter did not
    match); `false` (the condition was false); `error` (the condition failed; a
    deny/require_approval rule then counts as matched, see `detail`).
    `decided` marks the rule whose verdict is the policy's decision.
    """

    rule: str
    layer: Literal["builtin", "default", "policy"]
    effect: str
    outcome: Literal["matched", "skipped", "false", "error"]
    detail: str
    decided: bool = False


class ToolPatterns(Patterns):
    """The tools an agent may see: `"issue_refund" in patterns` (fnmatch globs allowed)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"ToolPatterns({list(self.patterns)!r})"


@dataclass(frozen=True, slots=True)
class _Plan:
    """The candidate rules for one (agent, tool, effect, autonomy), after the filters."""

    visible: bool
    defaults: tuple[CompiledRule, ...]
    rules: tuple[CompiledRule, ...]
    variables: tuple[str, ...]  # what the candidates' conditions read
    keys: dict[str, frozenset[str] | None]  # args/tags: the keys they read (None: all)


def _plan_key(ctx: ActionContext) -> tuple[str, str, str, str, bool]:
    return (ctx.agent, ctx.tool, ctx.effect, ctx.autonomy, ctx.declares_sinks)


class _Compiled:
    """A policy ready to decide: compiled rules, an index by tool, cached plans."""

    __slots__ = (
        "any_tool",
        "by_tool",
        "default",
        "defaults",
        "plans",
        "rules",
        "version",
        "visibility",
    )

    def __init__(self, policy: Policy, defaults: tuple[Rule, ...], version: str):
        self.version = version
        self.defaults = tuple(CompiledRule.of(r, "default", version) for r in defaults)
        self.rules = tuple(CompiledRule.of(r, "policy", version) for r in policy.rules)
        by_tool: dict[str, list[int]] = {}
        any_tool = []
        for i, compiled in enumerate(self.rules):
            if compiled.tools is None or compiled.tools.globs:
                any_tool.append(i)
            else:
                for name in compiled.tools.exact:
                    by_tool.setdefault(name, []).append(i)
        self.by_tool = {k: tuple(v) for k, v in by_tool.items()}
        self.any_tool = tuple(any_tool)
        self.visibility = tuple(
            (agent, ToolPatterns(tools)) for agent, tools in (policy.visibility or {}).items()
        )
        self.default = Decision(
            policy.default_effect,
            "default",
            f"no rule of policy {policy.name} matched; its default_effect is "
            f"{policy.default_effect}",
            version,
        )
        self.plans: dict[tuple[str, str, str, str, bool], _Plan] = {}

    def __eq__(self, other: object) -> bool:  # equal policies compile alike
        return isinstance(other, _Compiled) and other.version == self.version

    __hash__ = None  # type: ignore[assignment]

    def visible_to(self, agent: str) -> ToolPatterns | None:
        glob_match = None
        for key, patterns in self.visibility:
            if key == agent:
                return patterns
            if glob_match is None and is_glob(key) and fnmatch.fnmatchcase(agent, key):
                glob_match = patterns
        return glob_match

    def plan(self, ctx: ActionContext) -> _Plan:
        key = _plan_key(ctx)
        plan = self.plans.get(key)
        if plan is not None:
            return plan
        indices = sorted({*self.by_tool.get(ctx.tool, ()), *self.any_tool})
        rules = tuple(c for c in (self.rules[i] for i in indices) if c.filter_miss(ctx) is None)
        defaults = tuple(c for c in self.defaults if c.filter_miss(ctx) is None)
        candidates = (*defaults, *rules)
        keys: dict[str, frozenset[str] | None] = {}
        for var, read in (kv for c in candidates for kv in c.keys):
            known = keys.get(var, frozenset())
            keys[var] = None if read is None or known is None else known | read
        visible = self.visible_to(ctx.agent)
        plan = _Plan(
            visible=visible is None or ctx.tool in visible,
            defaults=defaults,
            rules=rules,
            variables=tuple(sorted({v for c in candidates for v in c.variables})),
            keys=keys,
        )
        if len(self.plans) >= MAX_PLANS:  # agents x tools is small in practice; stay bounded
            self.plans.clear()
        self.plans[key] = plan
        return plan

    def builtin(self, ctx: ActionContext, visible: bool) -> Decision | None:
        if not ctx.tool_known:
            reason = f"there is no tool named {ctx.tool!r} for agent {ctx.agent!r}"
            return Decision("deny", "builtin:unknown-tool", reason, self.version)
        if ctx.effect not in EFFECTS:
            reason = (
                f"tool {ctx.tool!r} has effect {ctx.effect!r}; only read, write and "
                "irreversible tools can run"
            )
            return Decision("deny", "builtin:unknown-effect", reason, self.version)
        if not visible:
            reason = f"tool {ctx.tool!r} is not visible to agent {ctx.agent!r} (policy visibility)"
            return Decision("deny", "builtin:not-visible", reason, self.version)
        return None

    def fixed(self, ctx: ActionContext) -> bool:
        """Whether every action of this (agent, tool, effect, autonomy) is decided alike: no
        rule can match it, so nothing else about the action (arguments, context) is read."""
        if not ctx.tool_known or ctx.effect not in EFFECTS:
            return True
        plan = self.plans.get(_plan_key(ctx)) or self.plan(ctx)
        return not plan.rules and not plan.defaults

    def decide(self, ctx: ActionContext) -> Decision:
        if not ctx.tool_known or ctx.effect not in EFFECTS:
            return self.builtin(ctx, True)  # type: ignore[return-value]
        plan = self.plans.get(_plan_key(ctx)) or self.plan(ctx)
        if not plan.visible:
            return self.builtin(ctx, False)  # type: ignore[return-value]
        env = cel_context(ctx, plan.variables, plan.keys) if plan.variables else None
        own = first_match(plan.rules, env) or self.default
        if plan.defaults:
            default = first_match(plan.defaults, env)
            if default is not None and STRICTNESS[default.verdict] > STRICTNESS[own.verdict]:
                return default
        return own


class Policy(BaseModel):
    """Ordered rules, a visibility map and a default; `decide` answers for one action.

    Load one with `Policy.from_file(path)` (YAML), `Policy.from_dict(doc)`, or build
    it in Python: `Policy(name="support", rules=[Rule(name=..., effect="deny")])`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(default="policy", min_length=1)
    version: str = "1"
    rules: tuple[Rule, ...] = ()
    visibility: dict[str, tuple[str, ...]] | None = None
    default_effect: Verdict = Verdict.ALLOW
    include_defaults: bool = True
    # Which shipped injection rules it includes (`bosun.govern.defaults`): `default` (v2),
    # `strict` (v2 and the blanket rule) or `legacy` (the rules before v2).
    profile: Profile = Profile.DEFAULT

    _compiled: _Compiled = PrivateAttr()

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: Any) -> Any:
        """`version: 3` in YAML is a number; versions are text."""
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        return str(value) if numeric else value

    @field_validator("visibility", mode="before")
    @classmethod
    def _visibility_lists(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: as_list(v) for k, v in value.items()}
        return value

    @field_validator("rules")
    @classmethod
    def _unique_names(cls, rules: tuple[Rule, ...]) -> tuple[Rule, ...]:
        seen: dict[str, int] = {}
        for i, rule in enumerate(rules):
            if rule.name == "default" or rule.name.startswith(RESERVED_PREFIXES):
                raise ValueError(
                    f"rules[{i}]: the rule name {rule.name!r} is reserved "
                    "(`default` and names starting builtin:, default:, autonomy:)"
                )
            if rule.name in seen:
                raise ValueError(
                    f"rules[{seen[rule.name]}] and rules[{i}] are both named {rule.name!r}; "
                    "rule names must be unique (decisions and the audit trail name them)"
                )
            seen[rule.name] = i
        return rules

    def model_post_init(self, context: Any, /) -> None:
        defaults = (
            tuple(Rule.model_validate(r) for r in PROFILES[self.profile])
            if self.include_defaults
            else ()
        )
        content = self.model_dump(mode="json", exclude={"profile"})
        content["profile"] = str(self.profile)
        content["defaults"] = [r.model_dump(mode="json") for r in defaults]
        digest = hashlib.sha256(
            json.dumps(content, sort_keys=True, separators=(",", ":")).encode()
        ).hexdigest()
        self._compiled = _Compiled(self, defaults, f"{self.name}@{self.version}+{digest[:8]}")

    # -- loading ---------------------------------------------------------------

    @classmethod
    def from_file(cls, path: str) -> Policy:
        """A policy from a YAML file; errors name the file, the line and the field."""
        return cls.from_yaml(yaml_lines.read_file(path, f"policy file {path}"), path)

    @classmethod
    def from_yaml(cls, text: str, filename: str = "<string>") -> Policy:
        what = f"policy file {filename}"
        data, lines = yaml_lines.load(text, what)
        if not isinstance(data, dict):
            raise SpecError(f"{what}, line 1: expected a mapping with `name` and `rules`")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise yaml_lines.validation_error(
                exc, what, lines, model=cls, plain_value_errors=True
            ) from None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "policy") -> Policy:
        """A policy from a document (e.g. inline in an agent file); errors name the field."""
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            problems = [
                f"{source}: `{yaml_lines.field_name(tuple(err['loc']))}`: "
                + yaml_lines.describe(err, cls, plain_value_errors=True)
                for err in exc.errors()
            ]
            raise SpecError("\n".join(dict.fromkeys(problems))) from None

    def unknown_reviewers(self, agent: str, reviewers: Collection[str]) -> list[str]:
        """Errors about `review:` rules that apply to `agent` but name a reviewer it does not
        declare (`reviewers:`): the call could never be reviewed, so the agent is refused."""
        problems = []
        for rule in self.rules:
            if rule.review is None or rule.review in reviewers:
                continue
            if rule.agents is not None and agent not in Patterns(rule.agents):
                continue
            hint = yaml_lines.did_you_mean(rule.review, sorted(reviewers), listing="it declares")
            problems.append(
                f"policy {self.name}: rule {rule.name!r} sends calls to reviewer"
                f" {rule.review!r}, which agent {agent!r} does not declare; add"
                f" `reviewers: [agent:{rule.review}]` to the agent{hint}"
            )
        return problems

    def unknown_tools(self, agent: str, tools: Collection[str]) -> list[str]:
        """Warnings about rules (and visibility) that apply to `agent` but name a tool it
        does not have: such a rule never matches, which is easy to miss (a typo, a renamed
        tool). A glob that matches none of its tools is reported too."""
        names = sorted(tools)
        problems = []

        def check(where: str, patterns: Iterable[str]) -> None:
            for pattern in patterns:
                if is_glob(pattern):
                    if not any(fnmatch.fnmatchcase(n, pattern) for n in names):
                        problems.append(
                            f"policy {self.name}: {where} has the pattern {pattern!r}, which "
                            f"matches none of the tools of agent {agent!r} "
                            f"({', '.join(names) or 'it has none'})"
                        )
                elif pattern not in tools:
                    hint = yaml_lines.did_you_mean(pattern, names, listing="its tools are")
                    problems.append(
                        f"policy {self.name}: {where} names tool {pattern!r}, which agent "
                        f"{agent!r} does not have, so it never matches{hint}"
                    )

        for rule in self.rules:
            if rule.tools and (rule.agents is None or agent in Patterns(rule.agents)):
                check(f"rule {rule.name!r}", rule.tools)
        patterns = self.visible_tools(agent)
        if patterns is not None:
            check("`visibility`", patterns)
        return problems

    # -- deciding --------------------------------------------------------------

    @property
    def version_id(self) -> str:
        """`name@version+hash`: changes whenever the content (or the shipped defaults) does."""
        return self._compiled.version

    def visible_tools(self, agent: str) -> ToolPatterns | None:
        """The tools this agent may see (test with `in`), or None when the policy does not say."""
        return self._compiled.visible_to(agent)

    def visible(self, agent: str, tool: str) -> bool:
        patterns = self._compiled.visible_to(agent)
        return patterns is None or tool in patterns

    def decide(self, ctx: ActionContext) -> Decision:
        """The policy's verdict on one proposed action (autonomy comes after: `apply_autonomy`)."""
        return self._compiled.decide(ctx)

    def is_fixed(self, ctx: ActionContext) -> bool:
        """Whether no rule can match this action's (agent, tool, effect, autonomy): then every
        such action gets the same decision, whatever its arguments and context."""
        return self._compiled.fixed(ctx)

    def explain(self, ctx: ActionContext) -> list[RuleResult]:
        """Every rule's outcome for this action, in evaluation order; `decided` marks the winner."""
        compiled = self._compiled
        decision = compiled.decide(ctx)
        results = []
        builtins = (
            ("builtin:unknown-tool", not ctx.tool_known, f"tool {ctx.tool!r} is known"),
            (
                "builtin:unknown-effect",
                ctx.effect not in EFFECTS,
                f"effect {ctx.effect!r} is read, write or irreversible",
            ),
            (
                "builtin:not-visible",
                not self.visible(ctx.agent, ctx.tool),
                f"tool {ctx.tool!r} is visible to agent {ctx.agent!r}",
            ),
        )
        for name, hit, fine in builtins:
            decided = decision.rule == name
            detail = decision.reason if decided else fine if not hit else "also denies"
            outcome: Literal["matched", "skipped"] = "matched" if hit else "skipped"
            results.append(RuleResult(name, "builtin", "deny", outcome, detail, decided))
        env = cel_context(ctx, CEL_VARIABLES, {})
        own_match = False
        for rule in (*compiled.defaults, *compiled.rules):
            results.append(_explain_rule(rule, ctx, env, decided=decision.rule == rule.rule.name))
            last = results[-1]
            if rule.layer == "policy" and (
                last.outcome == "matched"
                or (last.outcome == "error" and last.effect in FAIL_CLOSED)
            ):
                own_match = True
        results.append(
            RuleResult(
                "default",
                "policy",
                self.default_effect,
                "skipped" if own_match else "matched",
                "a rule matched first" if own_match else "no rule matched: default_effect",
                decided=decision.rule == "default",
            )
        )
        return results


def _explain_rule(
    compiled: CompiledRule, ctx: ActionContext, env: Any, decided: bool
) -> RuleResult:
    rule = compiled.rule
    miss = compiled.filter_miss(ctx)
    if miss is not None:
        return RuleResult(rule.name, compiled.layer, rule.effect, "skipped", miss)
    matched, error = compiled.evaluate(env)
    if error is not None:
        consequence = (
            f"; a {rule.effect} rule fails closed, so it counts as matched"
            if rule.effect in FAIL_CLOSED
            else "; so the rule does not match"
        )
        detail = f"`{rule.when}` failed: {error}{consequence}"
        return RuleResult(rule.name, compiled.layer, rule.effect, "error", detail, decided)
    if matched:
        detail = f"`{rule.when}` is true" if rule.when else "no condition"
        return RuleResult(rule.name, compiled.layer, rule.effect, "matched", detail, decided)
    return RuleResult(rule.name, compiled.layer, rule.effect, "false", f"`{rule.when}` is false")


__all__ = ["STRICTNESS", "Policy", "PolicyWarning", "Rule", "RuleResult", "ToolPatterns"]
