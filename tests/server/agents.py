"""Agents the test servers run (loaded with `--agent tests/server/agents.py:NAME`)."""

from bosun import Agent, Limits, tool


@tool(effect="read", idempotent=True)
def tick(n: int) -> int:
    """Count one step of work."""
    return n


@tool(effect="write", idempotent=True, sensitive=("card",))
def charge_card(card: str, amount: float) -> dict:
    """Charge a card (the card number is sensitive: redacted wherever people see it)."""
    return {"charged": amount, "card": card}


# Answers after one tool call, with no model latency: for throughput and API tests.
quick = Agent(
    name="quick",
    model={"provider": "sim", "latency_ms": 0, "tool_steps": 1, "input_tokens": 120,
           "output_tokens": 30},
    tools=[tick],
)  # fmt: skip

# Keeps working for a long time (200 steps, 100 ms each): for cancel and kill switch tests.
slow = Agent(
    name="slow",
    model={"provider": "sim", "latency_ms": 100, "tool_steps": 200, "input_tokens": 50,
           "output_tokens": 5},
    tools=[tick],
    limits=Limits(max_steps=400, max_tool_calls=400),
)  # fmt: skip

# About a second of visible work (5 steps, 150 ms each): for watching a run live.
steady = Agent(
    name="steady",
    model={"provider": "sim", "latency_ms": 150, "tool_steps": 4, "input_tokens": 400,
           "output_tokens": 60},
    tools=[tick],
)  # fmt: skip


@tool(effect="write")
def login(user: str, password: str) -> dict:
    """Log in to the partner system. It always refuses, quoting the password it was given
    (as careless libraries do): the redaction tests read that error."""
    raise RuntimeError(f"auth failed for {user} with password {password}")


# Proposes one login (its password is sensitive by default: nothing declares it), which a
# person must approve; the login fails, and the model then answers.
vault = Agent(
    name="vault",
    model={
        "provider": "scripted",
        "turns": [
            {"tool_calls": [{"name": "login",
                             "arguments": {"user": "ana", "password": "hunter2-original"}}]},
            {"content": "I could not log in."},
        ],
    },
    tools=[login],
    policy={
        "name": "vault-policy",
        "rules": [{"name": "logins-need-approval", "tools": ["login"],
                   "effect": "require_approval", "reason": "Logins need a person."}],
    },
)  # fmt: skip


@tool(effect="irreversible")
def wire(account: str, amount: float) -> dict:
    """Wire money to an account (a person approves every wire)."""
    return {"wired": amount, "account": account}


def _scripted(*turns: dict) -> dict:
    return {"provider": "scripted", "turns": list(turns)}


def _call(name: str, **arguments: object) -> dict:
    return {"tool_calls": [{"name": name, "arguments": arguments}]}


# Three levels of a run tree, the approval at the bottom: lead > billing > biller, whose
# wire a person approves from the console's inbox (which shows the path).
biller = Agent(
    name="biller",
    model=_scripted(_call("wire", account="ACME-7", amount=1200.0), {"content": "wired 1200"}),
    tools=[wire],
    policy={
        "name": "wires",
        "rules": [{"name": "wires-need-a-person", "tools": ["wire"],
                   "effect": "require_approval", "reason": "Every wire needs a person."}],
    },
)  # fmt: skip
billing = Agent(
    name="billing",
    model=_scripted(_call("biller", input="pay ACME-7 1200"), {"content": "billing done"}),
    tools=[biller],
)
lead = Agent(
    name="lead",
    model=_scripted(_call("billing", input="settle ACME's invoice"), {"content": "all settled"}),
    tools=[billing],
)
