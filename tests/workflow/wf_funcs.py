"""Functions the workflow tests call (importable by reference, as workers need)."""

from bosun import ToolContext, tool

CALLS: list[str] = []
FLAKY: dict[str, int] = {}


@tool(effect="read", idempotent=True)
def double(n: int) -> dict:
    """Twice n."""
    CALLS.append(f"double {n}")
    return {"n": n * 2}


@tool(effect="write")
def charge(amount: float, context: ToolContext) -> dict:
    """Charge once (not idempotent)."""
    CALLS.append(f"charge {amount}")
    return {"charged": amount, "key": context.idempotency_key}


@tool(effect="read", idempotent=True)
def flaky(name: str, fails: int) -> dict:
    """Fails `fails` times for `name`, then answers."""
    FLAKY[name] = FLAKY.get(name, 0) + 1
    if FLAKY[name] <= fails:
        raise RuntimeError(f"attempt {FLAKY[name]} failed")
    return {"attempts": FLAKY[name]}
