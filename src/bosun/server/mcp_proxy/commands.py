"""`bosun mcp proxy` (registered beside `bosun mcp serve`, in the `mcp` command group).

Over stdio the caller is the identity given here (`--tenant`, `--name`, else the file's
`tenant`/`user`): whoever starts the process has the database, as with `mcp serve`. Over
HTTP each request brings a Bosun API key instead.
"""

from __future__ import annotations

import argparse
import getpass
import os
from typing import Any

from bosun.errors import BosunError
from bosun.server.keys import check_tenant


def add_proxy_command(msub: Any, common: argparse.ArgumentParser) -> None:
    p = msub.add_parser(
        "proxy",
        parents=[common],
        help="serve upstream MCP servers' tools to MCP clients, each call governed and journaled",
    )
    p.add_argument("--config", required=True, metavar="PROXY_YAML", help="the proxy file")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--stdio", action="store_true", help="speak MCP on stdin/stdout (default)")
    how.add_argument("--http", type=int, metavar="PORT", help="Streamable HTTP at :PORT/mcp")
    p.add_argument("--host", default="127.0.0.1", help="address to bind with --http")
    p.add_argument("--tenant", default=None, help="stdio identity: the tenant (default: file's)")
    p.add_argument("--name", default=None, help="stdio identity: who, for the journal and audit")
    p.add_argument(
        "--allow-host",
        action="append",
        default=None,
        metavar="NAME",
        help="a Host name clients may use besides loopback and --host",
    )
    p.set_defaults(standalone=cmd_mcp_proxy)


def cmd_mcp_proxy(args: argparse.Namespace) -> int:
    from bosun.server.keys import Principal
    from bosun.server.mcp_proxy.config import load_proxy
    from bosun.server.mcp_proxy.serve import ProxySettings, main_mcp_proxy

    if args.http is not None and not 0 < args.http < 65536:
        raise BosunError(f"--http {args.http}: a port is 1-65535")
    if not os.path.exists(args.config):
        raise BosunError(f"--config {args.config}: no such file")
    proxy = load_proxy(args.config)  # before anything opens: errors name the file's lines
    spec = proxy.file
    name = args.name or spec.user or os.environ.get("BOSUN_USER") or getpass.getuser()
    tenant = check_tenant(args.tenant or spec.tenant)
    identity = Principal("stdio", tenant, "operator", f"mcp-proxy:{name}")
    settings = ProxySettings(
        proxy=proxy,
        db=args.db,
        http_port=args.http,
        host=args.host,
        identity=identity if args.http is None else None,
        allow_hosts=list(args.allow_host or []),
    )
    return main_mcp_proxy(settings)
