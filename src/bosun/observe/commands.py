"""The observe layer's CLI commands: `bosun usage`, `bosun trace`, `bosun export-trace`,
and the observability options of `bosun worker` (registered in `bosun.cli`)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson

from bosun.errors import BosunError


def _dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


# -- bosun usage ----------------------------------------------------------------


def add_usage_parser(sub: Any, common: argparse.ArgumentParser, duration: Any) -> None:
    p = sub.add_parser("usage", parents=[common], help="tokens and cost by agent, user, tag...")
    p.add_argument(
        "--by",
        default="agent",
        help="agent, model, tenant, user, session, tag, day, run or root (a run tree's "
        "top run: what a whole tree spent); several comma-separated (e.g. agent,model)",
    )
    p.add_argument("--since", type=duration, default=7 * 86400.0, help="e.g. 7d, 24h (default 7d)")
    p.add_argument("--tag-key", default=None, help="with --by tag: only this key, e.g. order")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p.add_argument("--json", action="store_true", help="same as --format json")
    p.set_defaults(handler=cmd_usage)


async def cmd_usage(rt: Any, args: argparse.Namespace) -> int:
    from bosun.observe.usage import parse_by, to_csv, to_table, usage

    try:
        by = parse_by(args.by)
    except ValueError as exc:
        raise BosunError(str(exc)) from None
    lines = await usage(rt.store, by, since=time.time() - args.since, tag_key=args.tag_key)
    fmt = "json" if args.json else args.format
    if fmt == "json":
        print(_dumps([line.as_dict() for line in lines]))
    elif fmt == "csv":
        sys.stdout.write(to_csv(lines, by))
    elif not lines:
        print(f"no model usage in the last {args.since / 86400:g} days in {rt.store.url}")
    else:
        print(to_table(lines, by))
    return 0


# -- bosun trace KEY=VALUE ---------------------------------------------------------


def add_trace_parser(sub: Any, common: argparse.ArgumentParser, parse_tag: Any) -> None:
    p = sub.add_parser(
        "trace", parents=[common], help="every run and action that touched a business object"
    )
    p.add_argument("object", type=parse_tag, metavar="KEY=VALUE", help="e.g. order=1234")
    p.add_argument("--limit", type=int, default=200, help="most recent runs first")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_trace)


async def cmd_trace(rt: Any, args: argparse.Namespace) -> int:
    from bosun.observe.shown import shown
    from bosun.observe.timeline import actions, format_cost, format_time, render_actions

    key, value = args.object
    runs = await rt.store.list_runs(tag=(key, value), limit=args.limit)
    report = []
    for run in runs:
        run, events = shown(run, await rt.store.events(run.id))
        report.append((run, actions(events, run.spec)))
    if args.json:
        print(
            _dumps(
                [
                    {
                        "run_id": run.id,
                        "agent": run.agent,
                        "agent_version": run.agent_version,
                        "status": run.status,
                        "tenant": run.tenant,
                        "user": run.user,
                        "started": run.created_at,
                        "input": run.input,
                        "cost": run.cost,
                        "actions": [a.as_dict() for a in acts],
                    }
                    for run, acts in report
                ]
            )
        )
        return 0
    if not runs:
        print(f"no run is tagged {key}={value} in {rt.store.url}")
        return 1
    print(f"{key}={value}: {len(runs)} run(s), newest first")
    for run, acts in report:
        who = f" user {run.user}" if run.user else ""
        print(
            f"\n{run.id}  {run.agent}  [{run.status}]  {format_time(run.created_at)}  "
            f"tenant {run.tenant}{who}  {format_cost(run.cost)}"
        )
        print(f"  goal: {run.input}")
        for line in render_actions(acts) or ["  (no tool calls)"]:
            print(line)
    return 0


# -- bosun export-trace RUN_ID ----------------------------------------------------------


def add_export_trace_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "export-trace",
        parents=[common],
        help="send a run's journal as an OpenTelemetry trace (OTEL_EXPORTER_OTLP_* settings)",
    )
    p.add_argument("run_id")
    p.add_argument(
        "--content", action="store_true", help="include (redacted) messages and arguments"
    )
    p.set_defaults(handler=cmd_export_trace)


async def cmd_export_trace(rt: Any, args: argparse.Namespace) -> int:
    from bosun.observe.tracing import (
        build_tracer_provider,
        export_run,
        trace_id_for,
        tracing_enabled_from_env,
    )

    await rt.get_run(args.run_id)
    if not tracing_enabled_from_env():
        raise BosunError(
            "no trace destination: set OTEL_EXPORTER_OTLP_ENDPOINT (e.g. http://localhost:4318) "
            "and, for gRPC, OTEL_EXPORTER_OTLP_PROTOCOL=grpc"
        )
    provider = build_tracer_provider()
    count = await export_run(rt.store, args.run_id, provider, capture_content=args.content)
    provider.shutdown()
    print(f"exported run {args.run_id} ({count} events) as trace {trace_id_for(args.run_id):032x}")
    return 0


# -- bosun worker options ------------------------------------------------------------


def add_worker_options(p: argparse.ArgumentParser, duration: Any) -> None:
    g = p.add_argument_group("observability")
    g.add_argument("--metrics-port", type=int, default=None, help="serve Prometheus /metrics here")
    g.add_argument("--metrics-host", default="0.0.0.0")
    g.add_argument("--log-json", action="store_true", help="JSON log lines with run and trace ids")
    g.add_argument(
        "--watchdog", action="store_true", help="flag stuck, looping and overspending runs"
    )
    g.add_argument("--stall-after", type=duration, default=300.0, help="no progress for (5m)")
    g.add_argument("--repeat-times", type=int, default=3, help="a call pattern repeated N times")
    g.add_argument("--spend-factor", type=float, default=5.0, help="x the agent's usual $/step")
    g.add_argument(
        "--pause-stuck", action="store_true", help="stop flagged runs at their next step"
    )
    g.add_argument("--alert-webhook", default=None, metavar="URL", help="POST findings here")


@contextlib.asynccontextmanager
async def observing(rt: Any, args: argparse.Namespace, worker: Any = None) -> AsyncIterator[None]:
    """Attach what the worker's flags and the OTEL_* environment ask for; tear it down after."""
    if getattr(args, "log_json", False):
        from bosun.observe.logs import configure_json_logging

        configure_json_logging()
    sinks: list[Any] = []
    metrics = server = watchdog_task = None
    stop = asyncio.Event()
    try:
        from bosun.observe.tracing import tracing_enabled_from_env

        tracing = tracing_enabled_from_env()
    except ImportError:
        tracing = False
    if tracing:
        from bosun.observe.tracing import TraceSink

        sinks.append(TraceSink(rt.store))
        logging.getLogger("bosun.observe").info("exporting traces over OTLP")
    if getattr(args, "log_json", False):
        from bosun.observe.logs import EventLog

        sinks.append(EventLog())
    if args.metrics_port is not None or args.watchdog:
        from bosun.observe.metrics import Metrics, serve_metrics

        metrics = Metrics(rt.store)
        if worker is not None:
            metrics.watch_worker(worker)
        sinks.append(metrics)
        if args.metrics_port is not None:
            server = await serve_metrics(metrics, host=args.metrics_host, port=args.metrics_port)
            print(
                f"metrics on http://{args.metrics_host}:{args.metrics_port}/metrics",
                file=sys.stderr,
            )
    observer = None
    if sinks:
        from bosun.observe.feed import Observer

        observer = await Observer(rt.store, sinks).attach(rt)
    if args.watchdog:
        from bosun.observe.alerts import LogAlerts, WebhookAlerts
        from bosun.observe.watchdog import Watchdog, WatchdogConfig

        alerts: list[Any] = [LogAlerts()]
        if args.alert_webhook:
            alerts.append(WebhookAlerts(args.alert_webhook))
        config = WatchdogConfig(
            no_progress_after=args.stall_after,
            repeat_times=args.repeat_times,
            spend_factor=args.spend_factor,
            pause=args.pause_stuck,
            interval=min(30.0, max(1.0, args.stall_after / 4)),
        )
        dog = Watchdog(rt.store, config, alerts=alerts, metrics=metrics, runtime=rt)
        watchdog_task = asyncio.create_task(dog.run(stop), name="bosun-watchdog")
    try:
        yield
    finally:
        stop.set()
        if watchdog_task is not None:
            await watchdog_task
        if observer is not None:
            await observer.close()
        if server is not None:
            server.close()
            await server.wait_closed()
