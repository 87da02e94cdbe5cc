"""The agent `bench/api_load.py` submits: the `sim` provider (no network), 2 tool steps
then an answer, 20 ms of simulated model latency per call."""

from bosun import Agent, tool


@tool(effect="read", idempotent=True)
def lookup(n: int) -> dict:
    """Look something up."""
    return {"n": n, "ok": True}


agent = Agent(
    name="loadtest",
    model={"provider": "sim", "latency_ms": 20, "tool_steps": 2, "input_tokens": 300,
           "output_tokens": 40},
    tools=[lookup],
)  # fmt: skip
