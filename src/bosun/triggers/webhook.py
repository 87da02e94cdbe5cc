"""Signed webhooks: `POST /hooks/{name}` checked here, before anything is started.

The sender signs `"{timestamp}.{raw body}"` with the hook's secret (HMAC-SHA256, hex, sent
as `X-Bosun-Signature: sha256=<hex>`), with `X-Bosun-Timestamp` (Unix seconds) and
`X-Bosun-Delivery` (its delivery id). A timestamp outside the tolerance is refused (a
captured request cannot be replayed later), a signature seen before under another
delivery id is refused (nor sooner), and the delivery id is the idempotency key: the
sender's retry of one event gets the same run back. The secret is read from the
environment variable the trigger names, at each request (rotating it needs no restart),
and is never logged or journaled.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass

import orjson

from bosun.engine.runtime import Runtime
from bosun.triggers.fire import Fired, Trigger, count, fire

TIMESTAMP = "x-bosun-timestamp"
DELIVERY = "x-bosun-delivery"
SIGNATURE = "x-bosun-signature"
MAX_DELIVERY_ID = 200


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The `X-Bosun-Signature` value for a body (what senders compute; tests use it too)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


@dataclass(frozen=True, slots=True)
class Refused(Exception):
    """Why a delivery is not accepted, as the HTTP status the sender gets."""

    status: int
    reason: str
    authentication: bool = False  # a bad or missing signature: audited, rate-limited


def verify(
    secret: str, headers: Mapping[str, str], body: bytes, *, tolerance: float, now: float
) -> tuple[str, str]:
    """(delivery id, signature) of a correctly signed, fresh request; `Refused` otherwise."""
    stamp, delivery, signature = (headers.get(h) for h in (TIMESTAMP, DELIVERY, SIGNATURE))
    if not stamp or not signature:
        raise Refused(401, "missing X-Bosun-Timestamp or X-Bosun-Signature", True)
    if not delivery or len(delivery) > MAX_DELIVERY_ID or not delivery.isprintable():
        raise Refused(400, f"X-Bosun-Delivery must be 1 to {MAX_DELIVERY_ID} printable characters")
    try:
        sent_at = int(stamp)
    except ValueError:
        raise Refused(401, "X-Bosun-Timestamp is not Unix seconds", True) from None
    expected = sign(secret, stamp, body)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise Refused(401, "the signature does not match the body and timestamp", True)
    if abs(now - sent_at) > tolerance:
        raise Refused(
            401, f"the timestamp is {now - sent_at:+.0f} s off (tolerance {tolerance:g} s)", True
        )
    return delivery, signature


async def receive(rt: Runtime, trigger: Trigger, headers: Mapping[str, str], body: bytes) -> Fired:
    """Check one delivery and start (or find) its run; `Refused` says why not."""
    hook = trigger.spec.webhook
    assert hook is not None
    await count(rt, trigger, "received")
    secret = os.environ.get(hook.secret_env)
    if not secret:
        raise Refused(503, f"the hook's secret is not set (environment variable {hook.secret_env})")
    try:
        delivery, signature = verify(
            secret, headers, body, tolerance=hook.tolerance_seconds, now=time.time()
        )
    except Refused:
        await count(rt, trigger, "rejected")
        raise
    if await trigger.paused(rt):
        raise Refused(503, f"trigger {trigger.name} is paused: deliver again later")
    try:
        payload = orjson.loads(body) if body.strip() else None
    except orjson.JSONDecodeError as exc:
        await count(rt, trigger, "rejected")
        raise Refused(400, f"the body is not JSON: {exc}") from None
    return await fire(rt, trigger, payload, delivery, signature=signature)
