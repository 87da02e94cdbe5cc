"""Durable waits: a run that waits for a warehouse's answer without holding a worker.

    bosun submit examples/waits/agent.py --input "Is order A1 in stock?" --db w.db
    bosun worker --db w.db &                      # drives it until it parks: `waiting`
    bosun signal RUN_ID stock --data '{"in_stock": 3}' --db w.db   # wakes it
    bosun show RUN_ID --db w.db                   # ... WAIT ... SIGNAL/RESOLVED ... answer

No answer within an hour: the wait settles with `on_deadline` and the run goes on.
"""

from bosun import Agent, Wait, tool


@tool(effect="read", idempotent=True)
def ask_warehouse(order: str) -> Wait:
    """Ask the warehouse about an order; its answer arrives as the `stock` signal."""
    return Wait(signal="stock", deadline=3600, on_deadline={"in_stock": None})


agent = Agent(
    name="stock-check",
    instructions="Check stock with the warehouse, then answer.",
    # Offline: play these turns. For a real model: model="openai:gpt-4o-mini"
    model={
        "provider": "scripted",
        "turns": [
            {"tool_calls": [{"name": "ask_warehouse", "arguments": {"order": "A1"}}]},
            {"content": "The warehouse answered; see the tool result."},
        ],
    },
    tools=[ask_warehouse],
)
