"""Agents for the signals API tests (loaded as `tests/server/wait_agents.py:NAME`)."""

from bosun import Agent, Wait, tool


@tool(effect="read", idempotent=True)
def await_approval_mail(order: str) -> Wait:
    """Wait for the `mail` signal (a webhook posts it)."""
    return Wait(signal="mail")


# Waits for the `mail` signal, then answers.
signalled = Agent(
    name="signalled",
    model={
        "provider": "scripted",
        "turns": [
            {"tool_calls": [{"name": "await_approval_mail", "arguments": {"order": "A1"}}]},
            {"content": "mail received"},
        ],
    },
    tools=[await_approval_mail],
)
