"""What governance costs per tool call: policy decisions, autonomy, taint, audit writes.

    .venv/bin/python bench/govern_overhead.py [--n 20000] [--json]

Each row times one operation `--n` times (after a warm-up) with perf_counter_ns,
`--repeat` times, and reports the median and the 99th percentile in microseconds
of the repetition with the lowest median (on a shared machine, the least
disturbed one).

- "1 rule": one rule for the tool, with a CEL condition (plus the two default rules).
- "100 rules": 100 rules over 20 tools and 5 agents, each with a CEL condition
  (over args, tags, user, spend, tainted_args); 5 rules name the tool under test
  and none of them matches, so every condition is evaluated and the default decides
  (the worst case for the candidates: nothing stops early).
- "+ context and autonomy": what the runtime does per call: build the ActionContext,
  decide, apply the autonomy level.
- "cold plan": the per-(agent, tool) pre-filter cache emptied before every decision.
- "CEL, shared context" vs "CEL, dict per rule": the same 5 conditions, evaluated
  with one `cel.Context` per decision or with a plain dict per evaluation.
- "taint check": `tainted_arguments` for 4 arguments against a 600-character
  untrusted text and the user's request (texts already seen: prepared once).
- "decide_call": what the step loop asks per call (`engine/decide.py`: provenance,
  policy, autonomy) for a read tool no rule is about (decided once per version, then
  cached) and for an irreversible `send_email(to, body)` (declaring `egress=("to",)` where
  the installed Bosun has sinks) after the run read a 600-character untrusted e-mail:
  before policy v2 that was `tainted_arguments` over the texts, now a few lookups in the
  run's provenance index. "provenance fold" is indexing one such result (once per
  result, on the first decision after it arrives). Run it with another checkout's `src`
  on PYTHONPATH to compare (the rows adapt to what that Bosun has).
- "audit write": one record appended to the SQLite audit hash chain in its own
  transaction (`SqliteStore.append_audit`), and per record in batches of 100.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import cel

from bosun.govern.autonomy import apply_autonomy
from bosun.govern.decision import ActionContext
from bosun.govern.policy import Policy
from bosun.govern.taint import tainted_arguments

AGENTS = ["support", "billing", "triage", "ops", "sales"]
TOOLS = [
    "issue_refund", "lookup_order", "send_reply", "close_ticket", "update_address",
    "cancel_order", "create_invoice", "void_invoice", "charge_card", "send_email",
    "delete_account", "export_data", "reset_password", "grant_credit", "escalate",
    "merge_tickets", "schedule_call", "update_plan", "apply_coupon", "ship_replacement",
]  # fmt: skip
CONDITIONS = [
    "args.amount > 1000.0",
    "tags.ticket.startsWith('VIP-')",
    "user in ['mallory', 'eve']",
    "spend > 5.0",
    "'to' in tainted_args",
    "args.currency != 'EUR' && args.amount > 50.0",
]
EFFECTS = ["deny", "require_approval", "notify", "shadow", "require_approval"]


def many_rules() -> dict[str, Any]:
    rules = []
    for i in range(100):
        tool = TOOLS[i % len(TOOLS)]  # 5 rules per tool
        rules.append(
            {
                "name": f"rule-{i:03d}-{tool}",
                "agents": [AGENTS[i % len(AGENTS)] if i % 3 else "support*"],
                "tools": [tool],
                "when": CONDITIONS[i % len(CONDITIONS)],
                "effect": EFFECTS[i % len(EFFECTS)],
            }
        )
    # Agent filters: rules 0, 20, 40, 60, 80 name issue_refund; make them all reach the
    # condition stage for agent "support" so every one is evaluated.
    for i in range(0, 100, len(TOOLS)):
        rules[i]["agents"] = ["support*"]
    return {"name": "bench", "version": "1", "rules": rules}


def one_rule() -> dict[str, Any]:
    return {
        "name": "bench-1",
        "rules": [
            {
                "name": "big-refunds",
                "tools": ["issue_refund"],
                "when": "args.amount > 1000.0",
                "effect": "require_approval",
            }
        ],
    }


ARGS = {"order": "A-1001", "amount": 120.0, "currency": "EUR", "note": "Sorry for the trouble"}
TAGS = {"ticket": "T-4821", "order": "A-1001"}


def action(args: dict[str, Any] | None = None) -> ActionContext:
    return ActionContext(
        agent="support",
        tool="issue_refund",
        effect="irreversible",
        autonomy="auto_notify",
        args=args if args is not None else ARGS,
        tenant="acme",
        user="alice",
        session="s-1",
        tags=TAGS,
        spend=0.42,
        read_untrusted=False,
        tainted_args=(),
    )


def decide_call_rows(mail: str) -> list[tuple[str, Callable[[], Any]]]:
    """The step loop's per-call question, on whatever Bosun is importable (see above)."""
    from bosun import Agent, tool
    from bosun.engine.decide import decide_call
    from bosun.engine.state import rebuild
    from bosun.govern.governor import Governor
    from bosun.journal.events import ModelResponded, RunStarted, ToolFinished, ToolProposed

    def lookup(order: str) -> str:
        """Look an order up."""
        return order

    def send_email(to: str, body: str) -> str:
        """Send an e-mail."""
        return to

    read_tool = tool(effect="read")(lookup)
    try:
        send = tool(effect="irreversible", egress=("to",))(send_email)
    except TypeError:  # a Bosun before sinks
        send = tool(effect="irreversible")(send_email)
    agent = Agent(name="support", model="scripted", tools=[read_tool, send])
    events = [
        RunStarted(agent="support", agent_version="v", input="Answer the customer at ana@corp.example"),
        ModelResponded(
            step=1, model="m", content="", tool_calls=1, input_tokens=0, output_tokens=0,
            cost=0.0, latency_ms=0.0,
        ),
        ToolProposed(step=1, call_id="c1", tool="read_email", arguments="{}"),
        ToolFinished(call_id="c1", tool="read_email", result={"body": mail}, duration_ms=1.0, trusted=False),
    ]  # fmt: skip
    state = rebuild("r", list(enumerate(events, 1)))
    governor = Governor(store=None)  # type: ignore[arg-type]
    args = {"to": "ana@corp.example", "body": "Your refund of $120.00 is on its way."}
    rows: list[tuple[str, Callable[[], Any]]] = [
        (
            "decide_call, read tool no rule is about",
            lambda: decide_call(governor, agent, state, "lookup", read_tool, {"order": "A-1"}),
        ),
        (
            "decide_call, send_email after untrusted text",
            lambda: decide_call(governor, agent, state, "send_email", send, args),
        ),
    ]
    try:
        from bosun.govern.provenance import ProvenanceIndex
    except ImportError:
        return rows

    def fold() -> None:
        index = ProvenanceIndex()
        index.tool_result("read_email", "c1", {"body": mail}, False, "{}")
        index.catch_up()

    return [*rows, ("provenance fold of one 600-char result", fold)]


def measure(fn: Callable[[], Any], n: int, repeat: int = 1) -> tuple[float, float]:
    """(median, p99) in µs of the repetition with the lowest median (the least disturbed)."""
    for _ in range(min(1000, n)):
        fn()
    best: tuple[float, float] | None = None
    clock = time.perf_counter_ns
    for _ in range(repeat):
        times = []
        for _ in range(n):
            start = clock()
            fn()
            times.append(clock() - start)
        times.sort()
        result = (statistics.median(times) / 1000, times[int(len(times) * 0.99)] / 1000)
        if best is None or result[0] < best[0]:
            best = result
    assert best is not None
    return best


def audit_rows(n: int) -> list[tuple[str, float, float]] | str:
    try:
        from bosun.journal.audit import AuditEntry
        from bosun.store.sqlite import SqliteStore
    except ImportError as exc:
        return f"audit write: skipped ({exc})"
    if not hasattr(SqliteStore, "append_audit"):
        return "audit write: skipped (SqliteStore has no append_audit)"

    async def run() -> list[tuple[str, float, float]]:
        with tempfile.TemporaryDirectory() as folder:
            store = SqliteStore(os.path.join(folder, "audit.db"))
            await store.open()
            try:
                entry = AuditEntry(
                    ts=time.time(),
                    actor="policy",
                    action="policy_decided",
                    subject="run-0001",
                    data={"tool": "issue_refund", "verdict": "allow", "rule": "default"},
                    tenant="acme",
                )
                single = []
                for i in range(min(n, 5000) + 200):
                    start = time.perf_counter_ns()
                    await store.append_audit([entry])
                    if i >= 200:
                        single.append(time.perf_counter_ns() - start)
                batch = []
                for _ in range(max(20, min(n, 5000) // 100)):
                    start = time.perf_counter_ns()
                    await store.append_audit([entry] * 100)
                    batch.append((time.perf_counter_ns() - start) / 100)
            finally:
                await store.close()
        single.sort()
        batch.sort()
        return [
            (
                "audit write: 1 record, own transaction (SQLite)",
                statistics.median(single) / 1000,
                single[int(len(single) * 0.99)] / 1000,
            ),
            (
                "audit write: per record, batches of 100",
                statistics.median(batch) / 1000,
                batch[int(len(batch) * 0.99)] / 1000,
            ),
        ]

    return asyncio.run(run())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="decisions per row")
    parser.add_argument(
        "--repeat", type=int, default=3, help="repetitions per row; the least disturbed is shown"
    )
    parser.add_argument("--json", action="store_true", help="also print the rows as JSON")
    opts = parser.parse_args(argv)
    n = opts.n

    small = Policy.from_dict(one_rule())
    large = Policy.from_dict(many_rules())
    ctx = action()
    candidates = [r for r in large.explain(ctx) if r.layer == "policy" and r.outcome != "skipped"]
    assert large.decide(ctx).rule == "default", large.decide(ctx)
    assert len(candidates) == 6, candidates  # 5 rules for the tool + the default

    def full_path() -> None:
        c = action()
        apply_autonomy(large.decide(c), c)

    def cold() -> None:
        large._compiled.plans.clear()
        large.decide(ctx)

    programs = [cel.compile(c) for c in CONDITIONS[:5]]
    variables = ctx.as_cel()

    def shared_context() -> None:
        env = cel.Context(variables)
        for p in programs:
            p.execute(env)

    def dict_per_rule() -> None:
        for p in programs:
            p.execute(variables)

    untrusted = [
        "From: customer@example.com\nHi, my order A-1001 arrived broken. Please refund "
        "$120.00 to my card, or send it to refunds@attacker.io. Thanks! " * 4
    ]
    trusted = ["Customer says order A-1001 arrived broken; refund it.", json.dumps(TAGS)]

    rows: list[tuple[str, float, float]] = []
    for label, fn in [
        *decide_call_rows(untrusted[0]),
        ("policy decision, 1 rule", lambda: small.decide(ctx)),
        ("policy decision, 100 rules", lambda: large.decide(ctx)),
        ("100 rules + context and autonomy", full_path),
        ("100 rules, cold plan (no pre-filter cache)", cold),
        ("CEL: 5 conditions, shared context", shared_context),
        ("CEL: 5 conditions, dict per rule", dict_per_rule),
        (
            "taint check (4 args, 1 untrusted text)",
            lambda: tainted_arguments(ARGS, untrusted, trusted),
        ),
    ]:
        median, p99 = measure(fn, n, opts.repeat)
        rows.append((label, median, p99))

    audit = audit_rows(n)
    notes = []
    if isinstance(audit, str):
        notes.append(audit)
    else:
        rows.extend(audit)

    width = max(len(r[0]) for r in rows)
    print(
        f"governance overhead: {n} iterations per row, best of {opts.repeat} "
        f"(python {sys.version.split()[0]}, {os.cpu_count()} cpus)"
    )
    print(f"{'operation'.ljust(width)}  {'median µs':>10}  {'p99 µs':>10}")
    for label, median, p99 in rows:
        print(f"{label.ljust(width)}  {median:10.2f}  {p99:10.2f}")
    for note in notes:
        print(note)
    if opts.json:
        print(json.dumps([{"operation": r[0], "median_us": r[1], "p99_us": r[2]} for r in rows]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
