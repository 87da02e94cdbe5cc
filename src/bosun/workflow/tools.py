"""The workflow's built-in actions as ordinary Bosun tools, so each passes the loop's
governance (policy, autonomy, approvals, kill switches, rate limits), is journaled and
runs exactly once like any tool call (see docs/workflows.md, "Governance").

- `http_get` (effect read, idempotent) and `http_send` (effect write, not idempotent):
  `call: http` by method, with httpx. A policy can allow one and gate the other.
- `emit` (effect write, idempotent: its CloudEvent id is the run and call, so a replay
  emits the same event and a consumer keyed on the id starts nothing twice).
- `wait`, `listen`, `human_task`: durable waits (`bosun.Wait`): a timer, a signal named
  after the event type, a signal `task:<call id>` answered with a form.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import httpx

from bosun.spec.tool import ToolContext, tool
from bosun.spec.wait import Wait
from bosun.workflow.interpreter import TIMEOUT

MAX_CONTENT = 1_000_000  # bytes of a response body kept in the journal


def _request(
    method: str,
    uri: str,
    headers: dict[str, str] | None,
    body: Any,
    query: dict[str, Any] | None,
    basic: dict[str, str] | None,
) -> dict[str, Any]:
    auth = (basic["username"], basic["password"]) if basic else None
    request_headers = dict(headers or {})
    with httpx.Client(timeout=25.0, follow_redirects=True) as client:
        response = client.request(
            method,
            uri,
            headers=request_headers,
            params=query,
            json=body if not isinstance(body, str | bytes) and body is not None else None,
            content=body if isinstance(body, str | bytes) else None,
            auth=auth,
        )
    raw = response.content[:MAX_CONTENT]
    content: Any
    if "json" in response.headers.get("content-type", ""):
        try:
            content = response.json()
        except ValueError:
            content = raw.decode(errors="replace")
    elif response.headers.get("content-type", "").startswith("text/") or not raw:
        content = raw.decode(errors="replace")
    else:
        content = base64.b64encode(raw).decode()
    return {
        "request": {"method": method, "uri": str(response.request.url), "headers": request_headers},
        "statusCode": response.status_code,
        "headers": dict(response.headers),
        "content": content,
    }


@tool(effect="read", idempotent=True, timeout=30.0, sensitive=("basic",))
def http_get(
    method: str,
    uri: str,
    headers: dict[str, str] | None = None,
    body: Any = None,
    query: dict[str, Any] | None = None,
    basic: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An HTTP request that reads (GET, HEAD, OPTIONS): the DSL's `call: http`."""
    return _request(method, uri, headers, body, query, basic)


@tool(effect="write", idempotent=False, timeout=30.0, sensitive=("basic",))
def http_send(
    method: str,
    uri: str,
    headers: dict[str, str] | None = None,
    body: Any = None,
    query: dict[str, Any] | None = None,
    basic: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An HTTP request that may change something (POST, PUT, PATCH, DELETE)."""
    return _request(method, uri, headers, body, query, basic)


@tool(effect="write", idempotent=True)
def emit(event: dict[str, Any], context: ToolContext) -> dict[str, Any]:
    """Publish a CloudEvent (the DSL's `emit`): journaled as this call's result, then given
    to every `on_emit` listener (`bosun.workflow.emits`)."""
    cloud = {
        "specversion": "1.0",
        "id": f"{context.run_id}:{context.call_id}",
        "time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "source": f"bosun://runs/{context.run_id}",
        **{k: v for k, v in event.items() if v is not None},
        "bosunrun": context.run_id,
    }
    cloud.setdefault("type", "bosun.workflow.event")
    return cloud


@tool(effect="read", idempotent=True)
def wait(seconds: float) -> Wait:
    """A durable timer (the DSL's `wait`): the run parks, a worker wakes it when due."""
    return Wait(timer=max(0.0, seconds), on_deadline={"waited": seconds})


@tool(effect="read", idempotent=True)
def listen(type: str | None = None, timeout: float | None = None) -> Wait:
    """Wait durably for an event of `type` (the DSL's `listen`): delivered as the signal of
    that name (`bosun signal RUN TYPE --data JSON`, the API, or a trigger); a signal sent
    before the run listens is kept for it. At `timeout` the task raises a timeout error."""
    return Wait(
        signal=type or "event", deadline=timeout, on_deadline={TIMEOUT: True} if timeout else None
    )


@tool(effect="read", idempotent=True)
def human_task(
    title: str,
    context: ToolContext,
    form: dict[str, Any] | None = None,
    description: str = "",
    assignee: str | None = None,
    data: Any = None,
    timeout: float | None = None,
) -> Wait:
    """Ask a person to fill in a form (`call: human`): shown in the console's inbox, answered
    with `bosun task answer RUN` or `POST /api/runs/{id}/tasks/{call}`; the answer is checked
    against the form's JSON schema before it is delivered. At `timeout`, a timeout error."""
    return Wait(
        signal=task_signal(context.call_id),
        deadline=timeout,
        on_deadline={TIMEOUT: True} if timeout else None,
    )


def task_signal(call_id: str) -> str:
    """The signal a human task's answer is delivered as."""
    return "task:" + call_id


BUILTINS = {t.name: t for t in (http_get, http_send, emit, wait, listen, human_task)}
