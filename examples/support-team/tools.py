"""Tools of the support-team example (offline: no network, no model endpoint)."""

from bosun import tool

ORDERS = {"1234": {"status": "delivered", "carrier": "DHL", "paid": 249.0, "damaged": True}}


@tool(effect="read", idempotent=True)
def lookup_order(order: str) -> dict:
    """Look an order up by its number."""
    return ORDERS.get(order, {"status": "unknown"})


@tool(effect="irreversible")
def issue_refund(order: str, amount: float) -> dict:
    """Refund an order. Cannot be undone."""
    return {"refunded": amount, "order": order}
