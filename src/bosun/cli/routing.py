"""The learning router's commands: `bosun feedback`, `bosun router evaluate|pin|reset|show`."""

from __future__ import annotations

import argparse
from typing import Any

from bosun.cli.common import dumps
from bosun.engine.runtime import Runtime
from bosun.errors import BosunError
from bosun.routing.rewards import give_feedback

# `bosun.routing.evaluate` and `.bandit` need numpy: imported by the commands that use them,
# so every other `bosun` command starts without it.


async def cmd_feedback(rt: Runtime, args: argparse.Namespace) -> int:
    n = await give_feedback(rt.store, args.run_id, args.score, comment=args.comment)
    print(f"feedback {args.score:g} recorded for {args.run_id}; {n} routing decision(s) learnt")
    return 0


async def _model(rt: Runtime, route: str, tenant: str) -> tuple[str, Any]:
    from bosun.routing.bandit import LinearThompson

    own = await rt.store.router_state(f"{route}/own/{tenant}")
    key = f"{route}/tenant/{tenant}" if own is not None else route
    row = await rt.store.router_state(key)
    return key, (LinearThompson.from_bytes(row[1]) if row else None)


async def cmd_evaluate(rt: Runtime, args: argparse.Namespace) -> int:
    from bosun.routing import evaluate as ev

    log = await ev.logged(rt.store, args.route, args.tenant, args.cost_price)
    _, model = await _model(rt, args.route, args.tenant)
    arms = sorted({d.arm for d in log} | set(model.arms if model else ()))
    if not log or not arms:
        raise BosunError(f"route {args.route!r}: no learned decisions with feedback to evaluate")
    dims = model.dims if model else max(i for d in log for i, _ in d.x) + 1
    policies: dict[str, Any] = {f"always {a}": ev.always(arms, a) for a in arms}
    if model is not None:  # rewards already carry the price of cost (--cost-price)
        policies["learned (greedy)"] = ev.greedy(model, arms, {}, 0.0)
    report = {name: ev.estimates(log, arms, policy, dims) for name, policy in policies.items()}
    if args.json:
        print(dumps({"route": args.route, "tenant": args.tenant, "policies": report}))
        return 0
    print(f"route {args.route} (tenant {args.tenant}): {len(log)} logged decisions")
    print(
        f"{'POLICY':<24} {'IPS':>8} {'SNIPS':>8} {'DR':>8}   (logged policy: "
        f"{next(iter(report.values()))['logged']})"
    )
    for name, r in report.items():
        print(f"{name:<24} {r['ips']:>8.4f} {r['snips']:>8.4f} {r['dr']:>8.4f}")
    return 0


async def cmd_pin(rt: Runtime, args: argparse.Namespace) -> int:
    route, tenant = args.route, args.tenant
    if args.clear:
        n = await rt.store.router_state_reset(f"{route}/pin/{tenant}")
        n += await rt.store.router_state_reset(f"{route}/own/{tenant}")
        print(f"{route}: tenant {tenant} unpinned" if n else f"{route}: {tenant} was not pinned")
        return 0
    if args.own:
        key, value = f"{route}/own/{tenant}", b"1"
    elif args.candidate:
        key, value = f"{route}/pin/{tenant}", args.candidate.encode()
    else:
        raise BosunError("say --candidate NAME, --own (a model of its own) or --clear")
    await rt.store.router_state_reset(key)
    await rt.store.router_state_put(key, 0, value)
    print(
        f"{route}: tenant {tenant} "
        + ("learns on its own model" if args.own else f"pinned to {args.candidate}")
    )
    return 0


async def cmd_reset(rt: Runtime, args: argparse.Namespace) -> int:
    key = f"{args.route}/tenant/{args.tenant}" if args.tenant else args.route
    if args.tenant:
        n = await rt.store.router_state_reset(key)
    else:  # the shared model and the spend, keeping pins and tenants' own models
        n = await rt.store.router_state_reset(args.route)
        n += await rt.store.router_state_reset(f"{args.route}/spend")
    print(f"{key}: learned state forgotten ({n} row(s))")
    return 0


async def cmd_show(rt: Runtime, args: argparse.Namespace) -> int:
    from bosun.routing.bandit import LinearThompson

    rows = await rt.store.router_states()
    if args.json:
        print(dumps([{"key": k, "version": v, "updated_at": t} for k, v, t in rows]))
        return 0
    for key, version, _ in rows:
        row = await rt.store.router_state(key)
        detail = ""
        if (row and "/" not in key) or (row and "/tenant/" in key):
            try:
                model = LinearThompson.from_bytes(row[1])
                detail = ", ".join(
                    f"{a}: {int(c)}" for a, c in zip(model.arms, model.counts, strict=True)
                )
                detail = f"rewards per candidate: {detail}"
            except Exception:
                detail = ""
        elif row:
            detail = row[1].decode(errors="replace")
        print(f"{key}  v{version}  {detail}")
    return 0


def add_routing_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("feedback", parents=[common], help="score a run; the router learns")
    p.add_argument("run_id")
    p.add_argument("--score", type=float, required=True, help="0 (bad) .. 1 (good)")
    p.add_argument("--comment", default=None)
    p.set_defaults(handler=cmd_feedback)

    router = sub.add_parser("router", help="the learning router: evaluate, pin, reset, show")
    rsub = router.add_subparsers(dest="router_command", required=True, metavar="ACTION")
    p = rsub.add_parser("evaluate", parents=[common], help="off-line IPS/SNIPS/DR estimates")
    p.add_argument("route")
    p.add_argument("--tenant", default="default")
    p.add_argument("--cost-price", type=float, default=0.0, help="quality per dollar")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_evaluate)
    p = rsub.add_parser("pin", parents=[common], help="pin a tenant to a candidate")
    p.add_argument("route")
    p.add_argument("--tenant", required=True)
    p.add_argument("--candidate", default=None)
    p.add_argument("--own", action="store_true", help="learn a model of the tenant's own")
    p.add_argument("--clear", action="store_true")
    p.set_defaults(handler=cmd_pin)
    p = rsub.add_parser("reset", parents=[common], help="forget what a route learned")
    p.add_argument("route")
    p.add_argument("--tenant", default=None, help="only this tenant's own model")
    p.set_defaults(handler=cmd_reset)
    p = rsub.add_parser("show", parents=[common], help="the learned states")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_show)
