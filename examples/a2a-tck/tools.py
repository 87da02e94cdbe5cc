"""Tools of the TCK agent, useful to any agent published over A2A."""

from bosun import Wait, tool


@tool(effect="read", idempotent=True)
def ask_user(question: str) -> Wait:
    """Ask the A2A client for more input: the task is `input-required` until its next
    message (delivered as the `a2a.input` signal), which becomes this call's result."""
    return Wait(signal="a2a.input", deadline=24 * 3600, on_deadline={"text": None})


@tool(effect="read", idempotent=True)
def pause(seconds: float) -> Wait:
    """Wait durably (no worker held) for `seconds`."""
    return Wait(timer=seconds, on_deadline={"waited": seconds})
