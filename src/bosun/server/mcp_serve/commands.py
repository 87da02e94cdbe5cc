"""`bosun mcp serve` (wired into `bosun.cli` beside `bosun serve`).

The MCP SDK's server stack is imported only when the command runs, so other commands start
fast. Over stdio (and in fixtures mode) the caller is the identity given here: the person
starting the process has the database, so they are trusted like `bosun keys create` trusts
them; over HTTP every request brings its own Bosun API key instead.
"""

from __future__ import annotations

import argparse
import getpass
import os
from typing import Any

from bosun.errors import BosunError
from bosun.server.keys import ROLES, check_tenant


def add_mcp_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    group = sub.add_parser("mcp", help="Bosun over the Model Context Protocol")
    msub = group.add_subparsers(dest="mcp_command", required=True, metavar="ACTION")
    p = msub.add_parser(
        "serve",
        parents=[common],
        help="serve agents (one tool each) and the control plane to MCP clients",
    )
    how = p.add_mutually_exclusive_group()
    how.add_argument("--stdio", action="store_true", help="speak MCP on stdin/stdout (default)")
    how.add_argument("--http", type=int, metavar="PORT", help="Streamable HTTP at :PORT/mcp")
    p.add_argument("--host", default="127.0.0.1", help="address to bind with --http")
    p.add_argument(
        "--agent",
        action="append",
        default=None,
        metavar="AGENT_FILE",
        help="an agent to serve as a tool (repeatable; also $BOSUN_AGENTS, comma-separated)",
    )
    p.add_argument("--tenant", default="default", help="stdio identity: the tenant")
    p.add_argument(
        "--role",
        default="operator",
        choices=ROLES,
        help="stdio identity: the role, which decides the tools served (default operator)",
    )
    p.add_argument("--name", default=None, help="stdio identity: who, for the audit trail")
    p.add_argument(
        "--allow-host",
        action="append",
        default=None,
        metavar="NAME",
        help="a Host name clients may use besides loopback and --host (e.g. behind a proxy)",
    )
    p.add_argument(
        "--answer-within",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="an agent tool answers with the run's status if it runs longer (default 300)",
    )
    p.add_argument(
        "--conformance-fixtures",
        action="store_true",
        help="also serve the MCP conformance suite's fixtures; no credentials, loopback only",
    )
    p.add_argument("--no-workers", action="store_true", help="runs are driven elsewhere")
    p.set_defaults(standalone=cmd_mcp_serve)
    from bosun.server.mcp_proxy.commands import add_proxy_command

    add_proxy_command(msub, common)


def cmd_mcp_serve(args: argparse.Namespace) -> int:
    from bosun.server.keys import Principal
    from bosun.server.mcp_serve.serve import McpServeSettings, main_mcp_serve
    from bosun.store import default_db_url

    if args.http is not None and not 0 < args.http < 65536:
        raise BosunError(f"--http {args.http}: a port is 1-65535")
    agents = list(args.agent or [])
    agents += [a.strip() for a in os.environ.get("BOSUN_AGENTS", "").split(",") if a.strip()]
    name = args.name or os.environ.get("BOSUN_USER") or getpass.getuser()
    identity = Principal("stdio", check_tenant(args.tenant), args.role, f"mcp:{name}")
    settings = McpServeSettings(
        db=args.db or default_db_url(),
        agents=agents,
        http_port=args.http,
        host=args.host,
        # HTTP callers bring keys; only stdio and the credential-less fixtures mode use it.
        identity=identity if args.http is None or args.conformance_fixtures else None,
        fixtures=args.conformance_fixtures,
        allow_hosts=list(args.allow_host or []),
        answer_within=args.answer_within,
        workers=not args.no_workers,
    )
    return main_mcp_serve(settings)
