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


@tool(effect="read", idempotent=True)
def tick(n: int) -> int:
    """Count one step of work."""
    return n


# Works for a few seconds (20 steps, 150 ms each): longer than a short --answer-within.
slowpoke = Agent(
    name="slowpoke",
    model={"provider": "sim", "latency_ms": 150, "tool_steps": 20, "input_tokens": 10,
           "output_tokens": 5},
    tools=[tick],
)  # fmt: skip
