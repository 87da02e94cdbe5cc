"""A2A push notifications, the configs' side: what a webhook config may name, and how
every delivery is signed.

- **Where**: `http`/`https` URLs only. A webhook on a loopback, private, link-local or
  reserved address (or a name resolving to one, or to nothing) is refused: the server
  would otherwise POST into its own network for anyone holding a key (SSRF; spec 13.2).
  The check runs when a config is created (literal addresses and `localhost`) and again
  before every delivery (names resolved then, with the SDK's
  `validate_push_notification_url`). `bosun serve --a2a-push-allow-loopback` allows
  loopback webhooks (tests, the TCK), nothing else.
- **Who sent it**: A2A's own credentials, as the spec says: `Authorization: <scheme>
  <credentials>` from the config's `authentication`, and `X-A2A-Notification-Token`
  with its `token`. Bosun also signs: `X-Bosun-Signature: t=<unix seconds>,v1=<hex
  HMAC-SHA256 of "<t>." + body>`, keyed by the config's token (a secret per config: the
  client's, or one Bosun generates and returns when the client gives none), so a receiver
  can check the body is unaltered and fresh (`verify`, a few lines in any language).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import secrets
import socket
import time
import urllib.parse

from a2a.utils.push_url_validator import validate_push_notification_url

SIGNATURE_HEADER = "X-Bosun-Signature"
TOKEN_HEADER = "X-A2A-Notification-Token"
TOLERANCE_SECONDS = 300  # how old a signed timestamp a receiver should still accept


def new_token() -> str:
    return secrets.token_urlsafe(32)


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The `X-Bosun-Signature` value for `body`."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(secret: str, header: str, body: bytes, *, now: float | None = None) -> bool:
    """What a receiver does: the signature matches and its time is recent."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        t = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - t) > TOLERANCE_SECONDS:
        return False
    return hmac.compare_digest(sign(secret, body, t), header)


def _literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def shown(url: str) -> str:
    """The URL as errors and logs show it: scheme, host and port only (a webhook's path or
    query often carries a secret)."""
    parsed = urllib.parse.urlparse(url)
    return f"{parsed.scheme}://{parsed.netloc.rsplit('@', 1)[-1]}/..."


def refusal(url: str, *, allow_loopback: bool) -> str | None:
    """Why a config may not name `url` (None: it may). No name is resolved here: a config
    is accepted for any well-formed public name, and checked again when delivered to."""
    try:
        parsed = urllib.parse.urlparse(url)
        parsed.port  # noqa: B018 -- raises on a bad port
    except ValueError:
        return "the push URL is not a URL"
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return "the push URL must be an http:// or https:// URL with a host"
    host = parsed.hostname
    address = _literal(host)
    url = shown(url)
    if host == "localhost" or (address is not None and address.is_loopback):
        if allow_loopback:
            return None
        return (
            f"push URL {url!r} is a loopback address: refused (SSRF); a server started with"
            " --a2a-push-allow-loopback delivers to loopback"
        )
    if address is not None and not address.is_global:
        return f"push URL {url!r} is a private, link-local or reserved address: refused (SSRF)"
    return None


async def delivery_refusal(url: str, *, allow_loopback: bool) -> str | None:
    """The check before each POST: the config's rule, then where the name resolves now."""
    reason = refusal(url, allow_loopback=allow_loopback)
    if reason is not None:
        return reason
    if allow_loopback and await _all_loopback(url):
        return None
    if not await validate_push_notification_url(url):
        return (
            f"push URL {shown(url)!r} resolves to no address, or to a loopback, private, link-local"
            " or reserved one: refused (SSRF)"
        )
    return None


async def _all_loopback(url: str) -> bool:
    parsed = urllib.parse.urlparse(url)
    host = parsed.hostname or ""
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return False
    addresses = [_literal(str(info[4][0]).split("%")[0]) for info in infos]
    return bool(addresses) and all(a is not None and a.is_loopback for a in addresses)
