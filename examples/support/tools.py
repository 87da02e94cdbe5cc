"""Tools of the retail support demo: an order database, a refund policy, a payments ledger
and an outbox, all local files so the demo runs offline. Real tools would call real APIs;
the shape (typed arguments, effect classes, idempotency keys) stays the same."""

from __future__ import annotations

import json
import os
from pathlib import Path

from bosun import ToolContext, tool

ORDERS = {
    "1234": {
        "order_id": "1234",
        "customer": "ana@example.com",
        "item": "Trail running shoes",
        "category": "footwear",
        "total": 89.90,
        "status": "delivered",
        "delivered_days_ago": 12,
    },
    "5678": {
        "order_id": "5678",
        "customer": "li@example.com",
        "item": "Espresso machine",
        "category": "appliances",
        "total": 349.00,
        "status": "shipped",
        "delivered_days_ago": None,
    },
}

POLICIES = {
    "footwear": {"window_days": 30, "condition": "unworn or defective", "max_refund": 200.0},
    "appliances": {"window_days": 14, "condition": "defective only", "max_refund": 500.0},
}


def data_dir() -> Path:
    """Where the ledger and outbox live (the demo points it next to its database)."""
    path = Path(os.environ.get("SUPPORT_DATA_DIR", ".demo"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@tool(effect="read", idempotent=True)
def lookup_order(order_id: str) -> dict:
    """Look up an order by its id: item, customer, total and delivery status."""
    order = ORDERS.get(order_id)
    if order is None:
        raise LookupError(f"no order {order_id}")
    return order


@tool(effect="read", idempotent=True)
def check_refund_policy(category: str) -> dict:
    """The refund policy for a product category: window in days, condition, maximum refund."""
    policy = POLICIES.get(category)
    if policy is None:
        raise LookupError(f"no refund policy for category {category}")
    return policy


@tool(effect="irreversible", idempotent=False)
def issue_refund(order_id: str, amount: float, reason: str, ctx: ToolContext) -> dict:
    """Refund money to the customer's original payment method. Cannot be undone."""
    order = ORDERS.get(order_id)
    if order is None:
        raise LookupError(f"no order {order_id}")
    if amount <= 0 or amount > order["total"]:
        raise ValueError(f"refund must be between 0 and the order total {order['total']}")
    ledger = data_dir() / "payments.jsonl"
    entry = {
        "refund_id": "rf_" + ctx.idempotency_key[-8:],
        "order_id": order_id,
        "amount": amount,
        "reason": reason,
        "idempotency_key": ctx.idempotency_key,
    }
    with ledger.open("a") as f:
        f.write(json.dumps(entry) + "\n")
    return {"refund_id": entry["refund_id"], "amount": amount, "status": "refunded"}


@tool(effect="write", idempotent=True)
def send_reply(to: str, message: str, ctx: ToolContext) -> dict:
    """Email the customer. Sending twice with the same key sends once."""
    outbox = data_dir() / "outbox.jsonl"
    sent = outbox.read_text().splitlines() if outbox.exists() else []
    if not any(json.loads(line)["key"] == ctx.idempotency_key for line in sent):
        with outbox.open("a") as f:
            f.write(json.dumps({"key": ctx.idempotency_key, "to": to, "message": message}) + "\n")
    return {"sent": True, "to": to}
