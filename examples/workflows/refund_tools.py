"""The refund workflow's functions (offline: a dictionary of orders, an outbox list)."""

from bosun import ToolContext, tool

ORDERS = {
    "A-1001": {
        "id": "A-1001",
        "amount": 35.0,
        "item": "mug",
        "customer": {"email": "ana@example.com", "refunds_last_90d": 0},
    },
    "A-2002": {
        "id": "A-2002",
        "amount": 480.0,
        "item": "espresso machine",
        "customer": {"email": "bo@example.com", "refunds_last_90d": 1},
    },
}
REFUNDS: dict[str, dict] = {}  # by idempotency key: a repeated call never refunds twice
OUTBOX: list[dict] = []


@tool(effect="read", idempotent=True)
def lookup_order(order_id: str) -> dict:
    """The order, with its customer's refund history."""
    if order_id not in ORDERS:
        raise ValueError(f"no order {order_id}")
    return ORDERS[order_id]


@tool(effect="write", idempotent=True)
def issue_refund(order_id: str, amount: float, context: ToolContext) -> dict:
    """Refund `amount` on the order (keyed by the call's idempotency key)."""
    refund = {
        "order_id": order_id,
        "amount": amount,
        "refund_id": "R-" + context.idempotency_key[-8:],
    }
    return REFUNDS.setdefault(context.idempotency_key, refund)


@tool(effect="write", idempotent=True)
def notify_customer(email: str, message: str) -> dict:
    """Tell the customer what was decided."""
    OUTBOX.append({"to": email, "message": message})
    return {"sent": True, "to": email}
