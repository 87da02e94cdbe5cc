"""Scripted agents shared by the observe tests."""

from __future__ import annotations

from typing import Any

from bosun import Agent, Limits, tool

UNLIMITED = Limits(
    max_steps=None, max_tool_calls=None, max_repeats=None, max_wall_seconds=None, max_tokens=None
)


def call(name: str, **arguments: object) -> dict[str, Any]:
    return {"tool_calls": [{"name": name, "arguments": arguments}]}


@tool(effect="read", idempotent=True)
async def lookup(order: str) -> dict[str, str]:
    """Look an order up."""
    return {"order": order, "status": "shipped"}


@tool(effect="write", idempotent=True, sensitive=["card"])
async def refund(order: str, amount: float, card: str = "") -> str:
    """Refund an order."""
    return f"refunded {amount} on {order}"


def support_agent(name: str = "support", *, model: str = "gpt-4o-mini") -> Agent:
    turns = [
        {**call("lookup", order="1234"), "input_tokens": 100, "output_tokens": 20},
        {**call("refund", order="1234", amount=5.0, card="4111-1111"), "input_tokens": 150},
        {"content": "Refunded order 1234.", "input_tokens": 200, "output_tokens": 10},
    ]
    return Agent(
        name=name,
        model={"provider": "scripted", "name": model, "turns": turns},
        tools=[lookup, refund],
        instructions="Help with orders.",
    )
