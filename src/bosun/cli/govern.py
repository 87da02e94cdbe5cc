"""The governance commands: approvals, approve, deny, kill, unkill, killswitches,
rollback, resolve, audit, and `bosun policy check`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson

from bosun.cli.common import dumps, whoami
from bosun.engine.runtime import Runtime
from bosun.errors import BosunError
from bosun.govern import audit, policy_check
from bosun.journal.calls import held_provenance
from bosun.journal.redact import Redactor
from bosun.observe.timeline import format_time
from bosun.observe.tree import path_text, tree_path
from bosun.spec.vocab import ApprovalStatus


async def cmd_approvals(rt: Runtime, args: argparse.Namespace) -> int:
    status = None if args.all else ApprovalStatus.PENDING
    approvals = await rt.approvals(status=status, tenant=args.tenant)
    specs = {a.run_id: (await rt.get_run(a.run_id)).spec for a in approvals}
    known: dict = {}  # runs read once for every approval's path in its tree
    paths = {a.run_id: await tree_path(rt.store, a.run_id, known) for a in approvals}
    if args.json:  # the API's shape and field names (`approval_id`), redacted alike
        from bosun.server.schemas import Approval

        held = [held_provenance(await rt.store.events(a.run_id), a.call_id) for a in approvals]
        shown = [
            Approval.of(a, specs[a.run_id], paths[a.run_id], h)
            for a, h in zip(approvals, held, strict=True)
        ]
        print(dumps([s.model_dump(mode="json") for s in shown]))
        return 0
    if not approvals:
        print("no pending approvals" if status else "no approvals")
        return 0
    for a in approvals:
        a = Redactor.for_run(specs[a.run_id]).approval(a)
        expires = f", expires {format_time(a.expires_at)}" if a.expires_at else ""
        print(f"{a.id}  [{a.status}]  {a.tool}({a.arguments})")
        print(
            f"    run {a.run_id} (agent {a.agent}, tenant {a.tenant}), needs role {a.role}{expires}"
        )
        print(f"    rule {a.rule}: {a.reason}")
        if len(paths[a.run_id]) > 1:  # asked deep in a run tree: approving resumes this run
            print(f"    path {path_text(paths[a.run_id])}")
        if a.decided_by:
            print(f"    {a.status} by {a.decided_by}" + (f": {a.comment}" if a.comment else ""))
    return 0


async def cmd_approve(rt: Runtime, args: argparse.Namespace) -> int:
    edit = None
    if args.edit is not None:
        try:
            edit = orjson.loads(args.edit)
        except orjson.JSONDecodeError as exc:
            raise BosunError(f"--edit must be a JSON object of arguments: {exc}") from None
        if not isinstance(edit, dict):
            raise BosunError("--edit must be a JSON object of arguments, e.g. '{\"amount\": 50}'")
    record = await rt.approve(args.approval_id, by=whoami(args), edit=edit, comment=args.comment)
    print(
        f"approved {record.id} ({record.tool}) as {record.decided_by}; run {record.run_id}"
        " continues once all its approvals are resolved: a running worker (`bosun worker`,"
        f" `bosun serve`) picks it up, or run it here now with `bosun resume {record.run_id}`"
    )
    return 0


async def cmd_deny(rt: Runtime, args: argparse.Namespace) -> int:
    record = await rt.deny(args.approval_id, by=whoami(args), reason=args.reason)
    print(f"denied {record.id} ({record.tool}); the agent is told: {args.reason}")
    return 0


async def cmd_kill(rt: Runtime, args: argparse.Namespace) -> int:
    switch = await rt.kill(args.scope, reason=args.reason, by=whoami(args))
    print(f"kill switch {switch.scope} set by {switch.set_by}: {switch.reason}")
    print("nothing in that scope executes from now on; running runs halt at their next step")
    return 0


async def cmd_unkill(rt: Runtime, args: argparse.Namespace) -> int:
    if await rt.unkill(args.scope, by=whoami(args)):
        print(f"kill switch {args.scope} cleared")
        return 0
    print(f"no kill switch set for {args.scope}")
    return 1


async def cmd_killswitches(rt: Runtime, args: argparse.Namespace) -> int:
    switches = await rt.store.kill_switches()
    if not switches:
        print("no kill switch is set")
    for k in switches:
        print(f"{k.scope}  set by {k.set_by} at {format_time(k.set_at)}: {k.reason}")
    return 0


async def cmd_rollback(rt: Runtime, args: argparse.Namespace) -> int:
    report = await rt.rollback(args.run_id, by=whoami(args), last=args.last)
    for label in report.compensated:
        print(f"compensated  {label}")
    for label in report.failed:
        print(f"FAILED       {label} (its undo raised; see bosun show {args.run_id})")
    for label in report.missing:
        print(f"NO UNDO      {label}: declares no undo; reverse it by hand")
    if not (report.compensated or report.failed or report.missing):
        print(f"run {args.run_id} has no executed effects left to roll back")
    return 0 if report.ok else 1


async def cmd_resolve(rt: Runtime, args: argparse.Namespace) -> int:
    if args.retry:
        if args.result is not None or args.not_done is not None:
            raise BosunError("--retry takes no --result or --not-done: there is no call to settle")
        await rt.resolve(args.run_id, by=whoami(args), retry=True)
        print(f"run {args.run_id} is queued again; a worker resumes it (or `bosun resume`)")
        return 0
    if (args.result is None) == (args.not_done is None):
        raise BosunError("say what happened: --result JSON (it took effect) or --not-done REASON")
    result = None
    if args.result is not None:
        try:
            result = orjson.loads(args.result)
        except orjson.JSONDecodeError as exc:
            raise BosunError(f"--result must be JSON (what the call returned): {exc}") from None
    call_id = await rt.resolve(
        args.run_id, by=whoami(args), result=result, failed=args.not_done, call_id=args.call
    )
    outcome = "took effect" if args.not_done is None else "did not take effect"
    print(f"recorded that {call_id} {outcome}; run {args.run_id} is queued and a worker resumes it")
    return 0


async def cmd_audit(rt: Runtime, args: argparse.Namespace) -> int:
    """Exit codes: 0 intact, 1 tampered, 2 a usage error (a head that cannot be read)."""
    if args.audit_command in ("verify", "head"):
        expect = audit.expected_heads(args.expect_head or [])
        result = await audit.verify(rt.store, expect)
        if not result.ok:
            where = f" at record {result.first_bad_seq}" if result.first_bad_seq else ""
            print(f"audit trail TAMPERED{where}: {result.problem}")
            return 1
        if args.audit_command == "head":
            print(result.head.to_json() if result.head else "")
            return 0
        journal = result.checked.get("journal_events", 0)
        heads = f", {len(expect)} recorded heads found" if expect else ""
        print(
            f"audit trail intact: {result.records} records, hash chain verified up to its head,"
            f" {journal} journal events accounted for{heads}"
        )
        return 0
    if args.output and args.output != "-":
        with open(args.output, "wb") as out:
            count = await audit.export(rt.store, out)
        print(f"wrote {count} audit records to {args.output}", file=sys.stderr)
    else:
        count = await audit.export(rt.store, sys.stdout.buffer)
        sys.stdout.flush()
    return 0


def cmd_policy_check(args: argparse.Namespace) -> int:
    code, text = policy_check.check_command(args)
    print(text, file=sys.stdout if code < 2 else sys.stderr)
    return code


def add_govern_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register the governance commands on `sub` (`bosun policy` after the server's)."""

    def by_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("--by", default=None, help="who decides (default: $BOSUN_USER or login)")

    p = sub.add_parser("approvals", parents=[common], help="pending approvals")
    p.add_argument("--tenant", default=None)
    p.add_argument("--all", action="store_true", help="resolved ones too")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_approvals)

    p = sub.add_parser("approve", parents=[common], help="approve a pending call")
    p.add_argument("approval_id")
    p.add_argument("--edit", default=None, metavar="JSON", help="run with these arguments instead")
    p.add_argument("--comment", default=None)
    by_arg(p)
    p.set_defaults(handler=cmd_approve)

    p = sub.add_parser("deny", parents=[common], help="deny a pending call")
    p.add_argument("approval_id")
    p.add_argument("--reason", required=True, help="what the agent is told")
    by_arg(p)
    p.set_defaults(handler=cmd_deny)

    p = sub.add_parser("kill", parents=[common], help="stop every action in a scope now")
    p.add_argument(
        "--scope",
        required=True,
        help="global, tenant:X, agent:X, tool:X or run:ID (a run and its children)",
    )
    p.add_argument("--reason", required=True)
    by_arg(p)
    p.set_defaults(handler=cmd_kill)

    p = sub.add_parser("unkill", parents=[common], help="clear a kill switch")
    p.add_argument("--scope", required=True)
    by_arg(p)
    p.set_defaults(handler=cmd_unkill)

    p = sub.add_parser("killswitches", parents=[common], help="list active kill switches")
    p.set_defaults(handler=cmd_killswitches)

    p = sub.add_parser("rollback", parents=[common], help="run the undo of a run's effects")
    p.add_argument("run_id")
    p.add_argument("--last", type=int, default=None, help="only the N most recent effects")
    by_arg(p)
    p.set_defaults(handler=cmd_rollback)

    p = sub.add_parser(
        "resolve", parents=[common], help="settle a needs_attention run's interrupted call"
    )
    p.add_argument("run_id")
    p.add_argument("--call", default=None, help="the call id (default: the one it parked on)")
    p.add_argument("--result", default=None, metavar="JSON", help="it took effect, returning this")
    p.add_argument("--not-done", default=None, metavar="REASON", help="it did not take effect")
    p.add_argument(
        "--retry", action="store_true", help="a run parked with no call open: queue it again"
    )
    by_arg(p)
    p.set_defaults(handler=cmd_resolve)

    p = sub.add_parser(
        "audit", parents=[common], help="verify or export the audit trail, or print its head"
    )
    p.add_argument(
        "audit_command",
        choices=["verify", "export", "head"],
        help="head: verify, then print the chain's head as a JSON line to keep elsewhere",
    )
    p.add_argument("--output", "-o", default=None, help="export to this file (default stdout)")
    p.add_argument(
        "--expect-head",
        action="append",
        metavar="HEAD",
        help="a head `bosun audit head` printed earlier (JSON, its hash, or a file of such"
        " lines): the chain must still hold it (repeatable)",
    )
    p.set_defaults(handler=cmd_audit)


def add_policy_command(sub: Any) -> None:
    p = sub.add_parser("policy", help="check what a policy decides, and why")
    policy_sub = p.add_subparsers(dest="policy_command", required=True, metavar="COMMAND")
    check = policy_sub.add_parser("check", help="which rule matches an action and why")
    policy_check.add_arguments(check)
    check.set_defaults(handler=None, standalone=cmd_policy_check)
