"""`bosun policy check`: what a policy decides about one action, and why.

    bosun policy check policy.yaml --agent support --tool issue_refund \\
        --effect irreversible --args '{"amount": 150}'

Lists every rule with its outcome, the policy's verdict, what the autonomy
level made of it, and the policy version. Exit code: 0 when the action would
run (allow, notify), 1 when it would not run now (review, require_approval, shadow,
deny), 2 when the policy or the arguments are invalid.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from bosun.errors import BosunError
from bosun.govern.autonomy import apply_autonomy
from bosun.govern.decision import AUTONOMY_LEVELS, ActionContext, Decision
from bosun.govern.policy import Policy, RuleResult
from bosun.spec.vocab import Origin

RUNS = ("allow", "notify")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("policy", metavar="POLICY", help="a policy YAML file")
    parser.add_argument("--agent", required=True, help="agent name")
    parser.add_argument("--tool", required=True, help="tool name")
    parser.add_argument("--args", default="{}", help="the call's arguments as a JSON object")
    parser.add_argument(
        "--effect",
        default="write",
        help="the tool's effect class: read, write (default) or irreversible",
    )
    parser.add_argument(
        "--autonomy",
        default="auto",
        choices=AUTONOMY_LEVELS,
        help="the effective autonomy level for this tool (default auto)",
    )
    parser.add_argument("--user", default=None, help="the user the run acts for")
    parser.add_argument("--tenant", default="default", help="the tenant (default: default)")
    parser.add_argument("--session", default=None, help="the session id")
    parser.add_argument(
        "--tag", action="append", default=[], metavar="KEY=VALUE", help="a run tag (repeatable)"
    )
    parser.add_argument("--spend", type=float, default=0.0, help="USD the run has spent so far")
    parser.add_argument(
        "--read-untrusted",
        action="store_true",
        help="the run has read output of a tool not marked trusted",
    )
    parser.add_argument(
        "--tainted",
        action="append",
        default=[],
        metavar="ARG",
        help="an argument whose value came only from untrusted content (repeatable)",
    )
    parser.add_argument(
        "--origin",
        action="append",
        default=[],
        metavar="ARG=ORIGIN",
        help="where an argument's value came from: user, instructions, trusted, untrusted or"
        " none (repeatable; `untrusted` also counts as --tainted)",
    )
    parser.add_argument(
        "--sink",
        action="append",
        default=[],
        metavar="ARG=KIND",
        help="a sink argument of the tool: egress, target or amount (repeatable)",
    )
    parser.add_argument(
        "--delegated",
        action="append",
        default=[],
        metavar="ARG",
        help="a sink from untrusted content the user's request delegated to (repeatable)",
    )
    parser.add_argument("--unknown-tool", action="store_true", help="the agent has no such tool")


def _context(args: argparse.Namespace) -> ActionContext:
    try:
        call_args = json.loads(args.args)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--args is not valid JSON: {exc}") from None
    if not isinstance(call_args, dict):
        raise ValueError(f"--args must be a JSON object, got {args.args!r}")
    tags: dict[str, str] = {}
    for item in args.tag:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--tag must be KEY=VALUE, got {item!r}")
        tags[key] = value
    origins = _pairs(args.origin, "--origin", "ARG=ORIGIN", tuple(o.value for o in Origin))
    sinks = _pairs(args.sink, "--sink", "ARG=KIND", ("egress", "target", "amount"))
    for name in args.tainted:
        origins.setdefault(name, Origin.UNTRUSTED)
    untrusted = tuple(n for n, o in origins.items() if o == Origin.UNTRUSTED)
    suspect = tuple(
        n
        for n, kind in sinks.items()
        if n not in args.delegated
        and (
            origins.get(n) == Origin.UNTRUSTED
            or (origins.get(n) == Origin.NONE and kind != "amount")
        )
    )
    return ActionContext(
        agent=args.agent,
        tool=args.tool,
        effect=args.effect,
        autonomy=args.autonomy,
        args=call_args,
        tenant=args.tenant,
        user=args.user,
        session=args.session,
        tags=tags,
        spend=args.spend,
        read_untrusted=args.read_untrusted,
        tainted_args=untrusted,
        tool_known=not args.unknown_tool,
        declares_sinks=bool(sinks),
        provenance=origins,
        args_from_untrusted=untrusted,
        args_from_nowhere=tuple(n for n, o in origins.items() if o == Origin.NONE),
        sinks=sinks,
        suspect_args=suspect,
        delegated_args=tuple(n for n in args.delegated if n in sinks),
    )


def _pairs(items: list[str], flag: str, form: str, allowed: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or value not in allowed:
            raise ValueError(
                f"{flag} must be {form} with one of {', '.join(allowed)}; got {item!r}"
            )
        out[key] = value
    return out


def _describe(decision: Decision) -> str:
    text = f"{decision.verdict} by {decision.rule}"
    if decision.verdict == "review":
        return f"{text} (reviewer agent {decision.reviewer} decides first)"
    if decision.verdict == "require_approval":
        extra = [f"role {decision.approver_role}"]
        if decision.expires_after is not None:
            extra.append(f"expires after {decision.expires_after:g}s")
            extra.append(
                f"then escalates to {decision.escalate_to}"
                if decision.on_expiry == "escalate"
                else "then denied"
            )
        text += f" ({', '.join(extra)})"
    return text


def _table(results: list[RuleResult]) -> list[str]:
    rows = [("", "layer", "rule", "effect", "outcome", "why")]
    for r in results:
        rows.append(
            (
                "->" if r.decided else "",
                r.layer,
                r.rule,
                r.effect,
                r.outcome.upper() if r.outcome == "matched" else r.outcome,
                r.detail,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    return [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:5])) + "  " + row[5]
        for row in rows
    ]


def render(policy: Policy, ctx: ActionContext, source: str) -> tuple[Decision, str]:
    """The final decision and the explanation text."""
    results = policy.explain(ctx)
    decided = policy.decide(ctx)
    final = apply_autonomy(decided, ctx)
    shown: dict[str, Any] = {
        "agent": ctx.agent,
        "tool": ctx.tool,
        "effect": ctx.effect,
        "autonomy": ctx.autonomy,
        "tenant": ctx.tenant,
        "user": ctx.user or "-",
    }
    lines = [
        f"policy   {policy.version_id}  ({source})",
        "action   " + "  ".join(f"{k}={v}" for k, v in shown.items()),
        f"         args={json.dumps(ctx.args, sort_keys=True)}",
        f"         tags={json.dumps(ctx.tags, sort_keys=True)}  spend={ctx.spend:g}  "
        f"read_untrusted={str(ctx.read_untrusted).lower()}  "
        f"tainted_args={list(ctx.tainted_args)}",
        f"         provenance={json.dumps(ctx.provenance, sort_keys=True)}  "
        f"sinks={json.dumps(ctx.sinks, sort_keys=True)}  suspect_args={list(ctx.suspect_args)}",
        "",
        "rules (in order; the stricter of the defaults and the policy's first match wins):",
        *("  " + line for line in _table(results)),
        "",
        f"policy verdict   {_describe(decided)}",
    ]
    if final is decided:
        lines.append(f"autonomy         {ctx.autonomy}: unchanged")
    else:
        lines.append(f"autonomy         {ctx.autonomy}: {_describe(final)}")
    lines.append(f"final verdict    {final.verdict.upper()}: {final.reason}")
    return final, "\n".join(lines)


def check_command(args: argparse.Namespace) -> tuple[int, str]:
    """Run `bosun policy check`: (exit code, text to print)."""
    try:
        policy = Policy.from_file(args.policy)
        ctx = _context(args)
    except (BosunError, ValueError) as exc:
        return 2, f"error: {exc}"
    final, text = render(policy, ctx, args.policy)
    return (0 if final.verdict in RUNS else 1), text


__all__ = ["add_arguments", "check_command", "render"]
