"""A payment agent for the approval-edit tests (`tests/server/payment_agents.py:payer`)."""

from bosun import Agent, tool


@tool(effect="irreversible", idempotent=True)
def pay(to: str, amount: float) -> dict:
    """Send money."""
    return {"paid": amount, "to": to}


payer = Agent(
    name="payer",
    model={"provider": "scripted", "turns": [
        {"tool_calls": [{"name": "pay", "arguments": {"to": "ana", "amount": 50}}]},
        {"content": "paid"},
    ]},
    tools=[pay],
    policy={
        "name": "payments",
        "rules": [
            {"name": "no-big-payments", "tools": ["pay"], "when": "args.amount > 100.0",
             "effect": "deny", "reason": "Payments above 100 are not allowed."},
            {"name": "supervisor-above-80", "tools": ["pay"], "when": "args.amount > 80.0",
             "effect": "require_approval", "approver_role": "supervisor"},
            {"name": "payments-need-approval", "tools": ["pay"], "effect": "require_approval"},
        ],
    },
)  # fmt: skip
