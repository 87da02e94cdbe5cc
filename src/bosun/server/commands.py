"""`bosun serve`, `bosun keys create|list|revoke` and `bosun tenants` (wired into `bosun.cli`).

The web stack is imported only when `bosun serve` runs, so other commands start fast. These
commands have the database itself, so they are trusted like its owner: `bosun keys create`
makes any role for any tenant, a platform key included.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import orjson

from bosun.errors import BosunError
from bosun.server.keys import ROLES


def add_server_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "serve",
        parents=[common],
        help="serve the HTTP API and the web console, with workers in this process",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8321)
    p.add_argument(
        "--agent",
        action="append",
        default=None,
        metavar="AGENT_FILE",
        help="an agent the server may run (repeatable; also $BOSUN_AGENTS, comma-separated)",
    )
    p.add_argument("--concurrency", type=int, default=200, help="runs driven at once here")
    p.add_argument(
        "--tool-threads",
        type=int,
        default=64,
        metavar="N",
        help="threads for sync tool bodies (default 64); calls beyond wait, not started",
    )
    p.add_argument("--no-workers", action="store_true", help="serve only; workers run elsewhere")
    p.add_argument("--secure-cookies", action="store_true", help="console cookies over HTTPS only")
    p.add_argument(
        "--max-body-bytes",
        type=int,
        default=1024 * 1024,
        metavar="N",
        help="refuse request bodies over N bytes with 413 (default 1 MiB)",
    )
    p.add_argument(
        "--trusted-proxy",
        action="append",
        default=None,
        metavar="IP",
        help="a reverse proxy (address or CIDR network) whose X-Forwarded-For is believed"
        " (repeatable; also $BOSUN_TRUSTED_PROXIES, comma-separated; default: none)",
    )
    p.add_argument(
        "--triggers",
        default=None,
        metavar="FILE",
        help="a triggers file: its webhooks served at /hooks/NAME, its schedules, queues and"
        " event triggers run in this process (docs/triggers.md)",
    )
    p.add_argument(
        "--a2a-public-anywhere",
        action="store_true",
        help="honour agents' `a2a: {public: true}` on any address, not only on loopback"
        " (their A2A endpoints then take calls without an API key: docs/a2a.md)",
    )
    p.add_argument(
        "--a2a-push-allow-loopback",
        action="store_true",
        help="deliver A2A push notifications to loopback webhooks (127.0.0.1, localhost):"
        " refused otherwise, as private addresses always are (SSRF; docs/a2a.md)",
    )
    p.add_argument(
        "--public-url",
        default=None,
        metavar="URL",
        help="the URL clients reach this server at, for A2A agent cards (default: http://HOST:PORT)",
    )
    p.set_defaults(standalone=cmd_serve)

    keys = sub.add_parser("keys", help="create, list and revoke API keys")
    ksub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    k = ksub.add_parser("create", parents=[common], help="create a key (shown once)")
    k.add_argument("--tenant", default="default")
    k.add_argument("--role", required=True, choices=ROLES)
    k.add_argument("--name", required=True, help="who or what uses it, e.g. alice, prometheus")
    k.add_argument(
        "--approves",
        default="",
        metavar="ROLES",
        help="approval roles this key may decide besides `approver`, comma-separated"
        " (a policy rule's approver_role, e.g. supervisor); approver, admin and platform keys"
        " only",
    )
    k.add_argument("--json", action="store_true")
    k.set_defaults(handler=cmd_keys_create)
    k = ksub.add_parser("list", parents=[common], help="list keys (never their secrets)")
    k.add_argument("--tenant", default=None)
    k.add_argument("--json", action="store_true")
    k.set_defaults(handler=cmd_keys_list)
    k = ksub.add_parser("revoke", parents=[common], help="revoke a key and end its sessions")
    k.add_argument("key_id")
    k.set_defaults(handler=cmd_keys_revoke)

    t = sub.add_parser(
        "tenants", parents=[common], help="every tenant seen in keys or runs, with counts"
    )
    t.add_argument("--json", action="store_true")
    t.set_defaults(handler=cmd_tenants)


def cmd_serve(args: argparse.Namespace) -> int:
    from bosun.server.serve import main_serve
    from bosun.server.state import Settings
    from bosun.store import default_db_url

    agents = list(args.agent or [])
    agents += [a.strip() for a in os.environ.get("BOSUN_AGENTS", "").split(",") if a.strip()]
    proxies = list(args.trusted_proxy or [])
    proxies += [a.strip() for a in os.environ.get("BOSUN_TRUSTED_PROXIES", "").split(",")]
    if args.max_body_bytes < 0:
        raise BosunError("--max-body-bytes must be 0 or more (bytes; default 1048576)")
    settings = Settings(
        db=args.db or default_db_url(),
        agents=agents,
        workers=not args.no_workers,
        worker_concurrency=args.concurrency,
        tool_threads=args.tool_threads,
        secure_cookies=args.secure_cookies,
        max_body_bytes=args.max_body_bytes,
        trusted_proxies=[p for p in proxies if p.strip()],
        triggers=args.triggers,
        a2a_public_anywhere=args.a2a_public_anywhere,
        a2a_push_allow_loopback=args.a2a_push_allow_loopback,
        public_url=args.public_url,
    )
    return main_serve(settings, args.host, args.port)


def _actor() -> str:
    import getpass

    return os.environ.get("BOSUN_USER") or getpass.getuser()


async def cmd_keys_create(rt: Any, args: argparse.Namespace) -> int:
    from bosun.server.keys import create_key

    record, text = await create_key(
        rt.store,
        tenant=args.tenant,
        role=args.role,
        name=args.name,
        approves=tuple(args.approves.split(",")),
        by=f"cli:{_actor()}",
    )
    if args.json:
        print(
            orjson.dumps(
                {
                    "key_id": record.id,
                    "tenant": record.tenant,
                    "role": record.role,
                    "name": record.name,
                    "approves": list(record.approves),
                    "key": text,
                }
            ).decode()
        )
        return 0
    approves = f", also decides {', '.join(record.approves)} approvals" if record.approves else ""
    print(
        f"created key {record.id} ({record.role} of tenant {record.tenant}, {record.name}"
        f"{approves}):\n"
    )
    print(f"    {text}\n")
    print(
        f"It is shown only this once: store it now. Revoke it with `bosun keys revoke {record.id}`."
    )
    return 0


async def cmd_keys_list(rt: Any, args: argparse.Namespace) -> int:
    keys = await rt.store.list_api_keys(tenant=args.tenant)
    if args.json:
        print(
            orjson.dumps(
                [
                    {
                        "key_id": k.id,
                        "tenant": k.tenant,
                        "role": k.role,
                        "name": k.name,
                        "approves": list(k.approves),
                        "created_at": k.created_at,
                        "revoked_at": k.revoked_at,
                        "last_used_at": k.last_used_at,
                    }
                    for k in keys
                ],
                option=orjson.OPT_INDENT_2,
            ).decode()
        )
        return 0
    if not keys:
        print("no API keys yet: `bosun keys create --role platform --name you`")
        return 0

    def when(ts: float | None) -> str:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else "-"

    rows = [("KEY", "TENANT", "ROLE", "APPROVES", "NAME", "CREATED", "LAST USED", "REVOKED")]
    rows += [
        (
            k.id,
            k.tenant,
            k.role,
            ",".join(k.approves) or "-",
            k.name,
            when(k.created_at),
            when(k.last_used_at),
            when(k.revoked_at),
        )
        for k in keys
    ]
    _table(rows)
    return 0


async def cmd_keys_revoke(rt: Any, args: argparse.Namespace) -> int:
    from bosun.server.keys import revoke_key

    if await revoke_key(rt.store, args.key_id, by=f"cli:{_actor()}"):
        print(f"revoked key {args.key_id}; its console sessions ended")
        return 0
    key = await rt.store.get_api_key(args.key_id)
    if key is None:
        raise BosunError(f"no API key {args.key_id!r}: see `bosun keys list`")
    print(f"key {args.key_id} was already revoked")
    return 1


async def cmd_tenants(rt: Any, args: argparse.Namespace) -> int:
    from bosun.server.keys import tenants

    found = await tenants(rt.store)
    if args.json:
        print(orjson.dumps(found, option=orjson.OPT_INDENT_2).decode())
        return 0
    if not found:
        print("no tenants yet: `bosun keys create --tenant acme --role admin --name alice`")
        return 0
    rows = [("TENANT", "KEYS", "REVOKED KEYS", "RUNS")]
    rows += [(t.tenant, str(t.keys), str(t.revoked_keys), str(t.runs)) for t in found]
    _table(rows)
    return 0


def _table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
