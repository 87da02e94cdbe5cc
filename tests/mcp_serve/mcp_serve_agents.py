"""Agents `bosun mcp serve` serves in these tests (`--agent mcp_serve_agents.py:NAME`)."""

from bosun import Agent, tool


@tool(effect="write")
def refund(order: str) -> dict:
    """Refund an order (a person approves every refund: see the policy below)."""
    return {"refunded": order}


# Answers at once, without tools.
greeter = Agent(
    name="greeter",
    instructions="Greets whoever asks.",
    model={"provider": "scripted", "turns": [{"content": "Hello from Bosun."}]},
)

# Proposes one refund, which needs approval; once it is approved, answers.
refunder = Agent(
    name="refunder",
    instructions="Refunds orders.",
    model={
        "provider": "scripted",
        "turns": [
            {"tool_calls": [{"name": "refund", "arguments": {"order": "1234"}}]},
            {"content": "Refunded order 1234."},
        ],
    },
    tools=[refund],
    policy={
        "name": "refunds",
        "rules": [{"name": "refunds-need-approval", "tools": ["refund"],
                   "effect": "require_approval", "reason": "Refunds need a person."}],
    },
)  # fmt: skip

# Named like a control tool: `bosun mcp serve` refuses to start with it.
approve = Agent(
    name="approve",
    model={"provider": "scripted", "turns": [{"content": "I would shadow the approve tool."}]},
)
