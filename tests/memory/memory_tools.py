"""Tools for the memory tests (importable by reference, as workers need)."""

from __future__ import annotations

from bosun import tool


@tool
def fetch_report(page: int) -> str:
    """A long report page (about 3,000 characters)."""
    return f"page {page}: " + " ".join(f"line{page}-{i}" for i in range(300))


@tool(effect="read")
def lookup_order(order: str) -> dict:
    """The order system's record of an order."""
    return {"order": order, "status": "shipped"}


@tool(effect="write")
def refund(order: str) -> dict:
    """Refund an order (only once it is known to be delivered)."""
    return {"refunded": order}
