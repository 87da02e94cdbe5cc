"""Agents the A2A server tests publish (`--agent tests/server_a2a/a2a_agents.py:NAME`)."""

from bosun import Agent, Limits, Wait, tool
from bosun.spec.a2a import A2ASettings


@tool(effect="read", idempotent=True)
def ask_user(question: str) -> Wait:
    """Ask the A2A client: the task is input-required until its next message."""
    return Wait(signal="a2a.input", deadline=3600, on_deadline={"text": None})


@tool(effect="irreversible")
def wire(account: str, amount: float) -> dict:
    """Wire money (a person approves every wire)."""
    return {"wired": amount, "account": account}


@tool(effect="read", idempotent=True)
def tick(n: int) -> int:
    """Count one step of work."""
    return n


def _scripted(*turns: dict) -> dict:
    return {"provider": "scripted", "turns": list(turns)}


# Answers at once.
echo = Agent(
    name="echo",
    instructions="Answer every question with a short greeting.",
    model=_scripted({"content": "Hello from Bosun"}),
)

# The same, callable over A2A without a key (honoured on loopback).
open_echo = Agent(
    name="open-echo",
    model=_scripted({"content": "Hello, anyone"}),
    a2a=A2ASettings(public=True, tenant="public"),
)

# Asks the client a question, then answers with what it was told.
asker = Agent(
    name="asker",
    model=_scripted(
        {"content": "Which account?",
         "tool_calls": [{"name": "ask_user", "arguments": {"question": "Which account?"}}]},
        {"content": "Thanks, noted."},
    ),
    tools=[ask_user],
)  # fmt: skip

# Proposes a wire, which a person (the approver role) must approve.
payer = Agent(
    name="payer",
    model=_scripted(
        {"tool_calls": [{"name": "wire", "arguments": {"account": "A-1", "amount": 5}}]},
        {"content": "Wired."},
    ),
    tools=[wire],
    policy={
        "name": "wires-need-approval",
        "rules": [{"name": "wires", "tools": ["wire"], "effect": "require_approval",
                   "reason": "Wires need a person."}],
    },
)  # fmt: skip

# Keeps working for a long time: for cancel.
slow = Agent(
    name="slow",
    model={"provider": "sim", "latency_ms": 100, "tool_steps": 300, "input_tokens": 50,
           "output_tokens": 5},
    tools=[tick],
    limits=Limits(max_steps=400, max_tool_calls=400),
)  # fmt: skip


@tool(effect="read", idempotent=True)
def wait_for_go(step: str) -> Wait:
    """Wait for the `go` signal: the task is working (not input-required) meanwhile."""
    return Wait(signal="go", deadline=3600, on_deadline={"go": False})


# Works (parked on a signal that is not the client's input) until signalled `go`.
waiter = Agent(
    name="waiter",
    model=_scripted(
        {"tool_calls": [{"name": "wait_for_go", "arguments": {"step": "one"}}]},
        {"content": "Done."},
    ),
    tools=[wait_for_go],
)  # fmt: skip
