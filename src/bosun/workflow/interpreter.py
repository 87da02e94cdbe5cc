"""The DSL's semantics as a pure function: (document, input, results so far) -> what next.

A workflow run is a Bosun run whose "model" is this interpreter (`provider.py`). Every
turn it replays the document from the start against the results the journal holds for
its actions (function, HTTP, agent and MCP calls, waits, listens, emits, human tasks),
and stops at the first actions without a result: those are proposed as the turn's tool
calls, so they pass the loop's governance, are journaled, run exactly once and survive a
crash like any tool call. Everything between actions (`set`, `switch`, `for`, `try`,
`raise`, expressions, flow directives) is recomputed, deterministically, from the journal:
nothing of it needs storing, and a resumed run is where its journal says.

An action's call id is its task's JSON pointer (`/do/0/lookup`), with `#n` for its n-th
visit in the run (loops, retries, `then:` jumps), so the same replay names the same call.
A fork's branches advance together: each turn proposes every unfinished branch's next
action; a branch that finished keeps its result (the journal has it) across crashes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bosun.workflow.durations import seconds
from bosun.workflow.expr import ExpressionFailed, evaluate, resolve, truthy

SPEC_ERRORS = "https://serverlessworkflow.io/spec/1.0.0/errors/"
TIMEOUT = "__bosun_timeout__"  # the result a timed-out listen or human task settles with
MAX_TASKS_PER_TURN = 100_000  # a `then:` loop with no action in it would spin for ever


def spec_error(kind: str, status: int, title: str, instance: str, detail: str | None = None):
    error: dict[str, Any] = {
        "type": SPEC_ERRORS + kind,
        "status": status,
        "title": title,
        "instance": instance,
    }
    if detail:
        error["detail"] = detail
    return error


@dataclass(frozen=True)
class Action:
    """A step with an effect or a wait: one tool call of the run."""

    call_id: str
    tool: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    """A journaled action's result: `value` when ok, else `error_type` and `message`."""

    ok: bool
    value: Any = None
    error_type: str = ""
    message: str = ""


class Suspended(Exception):
    """The replay reached actions without a result: they are the turn's calls."""

    def __init__(self, actions: list[Action]):
        super().__init__(f"{len(actions)} action(s)")
        self.actions = actions


class Faulted(Exception):
    """A DSL error (`raise`, a failed call, a bad expression): caught by `try`, or the run's."""

    def __init__(self, error: dict[str, Any]):
        super().__init__(error.get("title") or error.get("type"))
        self.error = error


_END = "end"
_EXIT = "exit"


@dataclass
class Interpreter:
    document: dict[str, Any]
    results: dict[str, Outcome]
    run_id: str = ""
    context: Any = field(default_factory=dict)
    trace: list[str] = field(default_factory=list)  # task pointers, in the order they ran
    waiting: list[str] = field(default_factory=list)  # pointers of the turn's actions
    _visits: dict[str, int] = field(default_factory=dict)
    _budget: int = MAX_TASKS_PER_TURN

    # -- the workflow --------------------------------------------------------

    def run(self, raw_input: Any) -> Any:
        doc = self.document
        self.raw_input = raw_input
        spec = doc.get("input") or {}
        self._check_schema(spec.get("schema"), raw_input, "/input", "input")
        data = raw_input
        args = self._args(raw_input, {})
        if "from" in spec:
            data = self._expr(spec["from"], raw_input, args, "/input/from")
        output, _ = self.do_list(doc["do"], "/do", data, {})
        out = doc.get("output") or {}
        if "as" in out:
            output = self._expr(out["as"], output, self._args(output, {}), "/output/as")
        self._check_schema(out.get("schema"), output, "/output", "output")
        return output

    def _args(self, inp: Any, scope: dict[str, Any]) -> dict[str, Any]:
        return {
            **scope,
            "context": self.context,
            "input": inp,
            "workflow": {"id": self.run_id, "input": self.raw_input, "definition": self.document},
            "runtime": {"name": "bosun", "version": "1.0"},
        }

    def _expr(self, text: Any, data: Any, args: dict[str, Any], where: str) -> Any:
        if not isinstance(text, str):  # an object or list written with `${}` inside
            return self._resolve(text, data, args, where)
        try:
            return evaluate(text, data, args)
        except ExpressionFailed as exc:
            raise Faulted(
                spec_error("expression", 400, "expression failed", where, str(exc))
            ) from None

    def _resolve(self, value: Any, data: Any, args: dict[str, Any], where: str) -> Any:
        try:
            return resolve(value, data, args)
        except ExpressionFailed as exc:
            raise Faulted(
                spec_error("expression", 400, "expression failed", where, str(exc))
            ) from None

    def _true(self, text: str, data: Any, args: dict[str, Any], where: str) -> bool:
        try:
            return truthy(text, data, args)
        except ExpressionFailed as exc:
            raise Faulted(
                spec_error("expression", 400, "expression failed", where, str(exc))
            ) from None

    def _check_schema(self, schema: Any, value: Any, where: str, what: str) -> None:
        if not schema:
            return
        body = schema.get("document") if isinstance(schema, dict) else None
        if body is None:
            return
        import jsonschema

        problems = sorted(jsonschema.Draft202012Validator(body).iter_errors(value), key=str)
        if problems:
            first = problems[0]
            at = "/".join(str(p) for p in first.absolute_path) or "(root)"
            raise Faulted(
                spec_error("validation", 400, f"invalid {what}", where, f"{at}: {first.message}")
            )

    # -- sequences and flow --------------------------------------------------

    def do_list(
        self, tasks: list[dict[str, Any]], pointer: str, data: Any, scope: dict[str, Any]
    ) -> tuple[Any, str | None]:
        """Run a task list from its first task; returns its output and `end` if the
        workflow ended inside it."""
        names = [next(iter(t)) for t in tasks]
        i = 0
        while i < len(tasks):
            name = names[i]
            data, directive = self.task(name, tasks[i][name], f"{pointer}/{i}/{name}", data, scope)
            if directive == _END:
                return data, _END
            if directive == _EXIT:
                return data, None
            if directive in (None, "continue"):
                i += 1
            elif directive in names:
                i = names.index(directive)
            else:
                raise Faulted(
                    spec_error(
                        "configuration",
                        400,
                        f"`then: {directive}` names no task of this list",
                        f"{pointer}/{i}/{name}",
                    )
                )
        return data, None

    def task(
        self, name: str, task: dict[str, Any], pointer: str, raw: Any, scope: dict[str, Any]
    ) -> tuple[Any, str | None]:
        self._budget -= 1
        if self._budget < 0:
            raise Faulted(spec_error("runtime", 500, "too many tasks without an action", pointer))
        args = self._args(raw, scope)
        args["task"] = {"name": name, "reference": pointer, "input": raw}
        if "if" in task and not self._true(task["if"], raw, args, pointer + "/if"):
            return raw, None
        self.trace.append(pointer)
        spec = task.get("input") or {}
        self._check_schema(spec.get("schema"), raw, pointer + "/input", "task input")
        inp = (
            self._expr(spec["from"], raw, args, pointer + "/input/from") if "from" in spec else raw
        )
        args["input"] = inp
        output, directive = self.body(task, pointer, inp, args, scope)
        out = task.get("output") or {}
        if "as" in out:
            output = self._expr(
                out["as"], output, {**args, "output": output}, pointer + "/output/as"
            )
        self._check_schema(out.get("schema"), output, pointer + "/output", "task output")
        export = task.get("export") or {}
        if "as" in export:
            self.context = self._expr(
                export["as"], output, {**args, "output": output}, pointer + "/export/as"
            )
        if directive == _END:
            return output, _END
        return output, task.get("then", directive)

    def body(
        self, task: dict[str, Any], p: str, inp: Any, args: dict[str, Any], scope: dict[str, Any]
    ) -> tuple[Any, str | None]:
        if "call" in task:
            return self.call(task, p, inp, args), None
        if "set" in task:
            return self._resolve(task["set"], inp, args, p + "/set"), None
        if "switch" in task:
            return inp, self.switch(task["switch"], p, inp, args)
        if "for" in task:
            return self.for_(task, p, inp, scope)
        if "fork" in task:
            return self.fork(task["fork"], p, inp, scope), None
        if "try" in task:
            return self.try_(task, p, inp, scope)
        if "do" in task:
            return self.do_list(task["do"], p + "/do", inp, scope)
        if "raise" in task:
            raise Faulted(self.raised(task["raise"], p, inp, args))
        if "wait" in task:
            self.action(p, "wait", {"seconds": seconds(self._resolve(task["wait"], inp, args, p))})
            return inp, None
        if "emit" in task:
            event = self._resolve(task["emit"]["event"].get("with", {}), inp, args, p + "/emit")
            return self.action(p, "emit", {"event": event}), None
        if "listen" in task:
            return self.listen(task, p, inp, args), None
        raise Faulted(spec_error("configuration", 400, "a task Bosun does not run", p))

    def switch(self, cases: list[dict[str, Any]], p: str, inp: Any, args: dict[str, Any]):
        for i, item in enumerate(cases):
            name, case = next(iter(item.items()))
            when = case.get("when")
            if when is None or self._true(when, inp, args, f"{p}/switch/{i}/{name}/when"):
                return case.get("then", "continue")
        return None

    def for_(self, task: dict[str, Any], p: str, inp: Any, scope: dict[str, Any]):
        loop = task["for"]
        args = self._args(inp, scope)
        items = self._expr(loop["in"], inp, args, p + "/for/in")
        if isinstance(items, dict):
            items = list(items.values())
        each, at = loop.get("each", "item"), loop.get("at", "index")
        data = inp
        for index, item in enumerate(items or []):
            inner = {**scope, each: item, at: index}
            if "while" in task and not self._true(
                task["while"], data, self._args(data, inner), p + "/while"
            ):
                break
            data, directive = self.do_list(task["do"], p + "/do", data, inner)
            if directive == _END:
                return data, _END
        return data, None

    def fork(self, fork: dict[str, Any], p: str, inp: Any, scope: dict[str, Any]) -> Any:
        branches = fork["branches"]
        outputs: list[Any] = []
        pending: list[Action] = []
        for i, branch in enumerate(branches):
            name = next(iter(branch))
            try:
                out, _ = self.task(name, branch[name], f"{p}/fork/branches/{i}/{name}", inp, scope)
            except Suspended as suspended:
                pending.extend(suspended.actions)
                continue
            if fork.get("compete"):
                return out  # the first branch (in order) that finished wins
            outputs.append(out)
        if pending:
            raise Suspended(pending)
        return outputs

    def try_(self, task: dict[str, Any], p: str, inp: Any, scope: dict[str, Any]):
        catch = task.get("catch") or {}
        attempt = 0
        while True:
            try:
                return self.do_list(task["try"], p + "/try", inp, scope)
            except Faulted as fault:
                error = fault.error
                var = catch.get("as", "error")
                inner = {**scope, var: error}
                if not _matches(catch.get("errors"), error):
                    raise
                args = self._args(inp, inner)
                if "when" in catch and not self._true(catch["when"], error, args, p + "/catch"):
                    raise
                if "exceptWhen" in catch and self._true(
                    catch["exceptWhen"], error, args, p + "/catch"
                ):
                    raise
                retry = self._retry_policy(catch.get("retry"))
                if retry is not None and _may_retry(retry, attempt, error, self, args, p):
                    delay = _delay(retry, attempt)
                    if delay > 0:
                        self.action(p + "/catch/retry", "wait", {"seconds": delay})
                    attempt += 1
                    continue
                if "do" in catch:
                    return self.do_list(catch["do"], p + "/catch/do", inp, inner)
                if retry is not None:  # retried to its limit, with no fallback: it faults
                    raise
                return inp, None

    def _retry_policy(self, retry: Any) -> dict[str, Any] | None:
        if isinstance(retry, str):
            return ((self.document.get("use") or {}).get("retries") or {}).get(retry)
        return retry

    def raised(self, spec: dict[str, Any], p: str, inp: Any, args: dict[str, Any]) -> dict:
        error = spec["error"]
        if isinstance(error, str):  # a reference to `use.errors`
            error = ((self.document.get("use") or {}).get("errors") or {}).get(error, {})
        error = dict(self._resolve(error, inp, args, p + "/raise/error"))
        error.setdefault("instance", p)
        return error

    # -- actions -------------------------------------------------------------

    def action(self, pointer: str, tool: str, arguments: dict[str, Any]) -> Any:
        """An action's result, or `Suspended` when the journal has none yet."""
        visit = self._visits[pointer] = self._visits.get(pointer, -1) + 1
        call_id = pointer if visit == 0 else f"{pointer}#{visit}"
        outcome = self.results.get(call_id)
        if outcome is None:
            self.waiting.append(pointer)
            raise Suspended([Action(call_id, tool, arguments)])
        if outcome.ok:
            if isinstance(outcome.value, dict) and outcome.value.get(TIMEOUT):
                raise Faulted(spec_error("timeout", 408, f"{tool} timed out", pointer))
            return outcome.value
        status, kind = _FAILURES.get(outcome.error_type, (500, "runtime"))
        raise Faulted(
            spec_error(
                kind, status, f"{tool} failed ({outcome.error_type})", pointer, outcome.message
            )
        )

    def call(self, task: dict[str, Any], p: str, inp: Any, args: dict[str, Any]) -> Any:
        what = task["call"]
        given = task.get("with") or {}
        timeout = _timeout(task, self.document)
        if what == "http":
            return self.http(given, p, inp, args)
        if what == "agent":
            spec = self._resolve(given, inp, args, p + "/with")
            text = spec.get("input", inp)
            if not isinstance(text, str):
                import orjson

                text = orjson.dumps(text).decode()
            return self.action(p, spec["agent"], {"input": text})
        if what == "human":
            spec = self._resolve(given, inp, args, p + "/with")
            arguments = {
                "title": spec.get("title") or p.rsplit("/", 1)[-1],
                "description": spec.get("description", ""),
                "form": spec.get("form") or {"type": "object"},
                "assignee": spec.get("assignee"),
                "data": spec.get("data"),
                "timeout": timeout,
            }
            return self.action(p, "human_task", arguments)
        if what == "mcp":  # the server's tool, pinned when the workflow loaded (`mcp_call.py`)
            spec = self._resolve(given, inp, args, p + "/with")
            params = spec.get("parameters") or {}
            return self.action(p, params.get("name", "mcp"), dict(params.get("arguments") or {}))
        if what == "a2a":  # the agent's skill, pinned when the workflow loaded (`a2a_call.py`)
            from bosun.workflow.a2a_call import message_text, tool_name

            spec = self._resolve(given, inp, args, p + "/with")
            settings = (
                ((self.document.get("document") or {}).get("metadata") or {}).get("bosun") or {}
            ).get("a2a") or {}
            text = message_text(spec.get("parameters") or {})
            return self.action(p, tool_name(spec, settings), {"message": text})
        return self.action(p, what, self._resolve(given, inp, args, p + "/with"))

    def http(self, given: dict[str, Any], p: str, inp: Any, args: dict[str, Any]) -> Any:
        spec = self._resolve(given, inp, args, p + "/with")
        endpoint = spec.get("endpoint")
        uri = endpoint.get("uri") if isinstance(endpoint, dict) else endpoint
        auth = (endpoint.get("authentication") if isinstance(endpoint, dict) else None) or {}
        if isinstance(inp, dict):  # `{name}`: the DSL's simple interpolation of top-level data
            uri = re.sub(
                r"\{(\w+)\}",
                lambda m: str(inp.get(m.group(1), m.group(0))),
                str(uri),
            )
        method = str(spec.get("method", "get")).upper()
        arguments: dict[str, Any] = {"method": method, "uri": uri}
        for key in ("headers", "body", "query"):
            if spec.get(key) is not None:
                arguments[key] = spec[key]
        if "basic" in auth:
            arguments["basic"] = auth["basic"]
        tool = "http_get" if method in ("GET", "HEAD", "OPTIONS") else "http_send"
        response = self.action(p, tool, arguments)
        status = response.get("statusCode", 0)
        if status >= 400:
            raise Faulted(
                spec_error(
                    "communication",
                    status,
                    f"HTTP {status} from {method} {uri}",
                    p,
                    str(response.get("content"))[:500],
                )
            )
        kind = spec.get("output", "content")
        if kind == "response":
            return response
        return response.get("content")

    def listen(self, task: dict[str, Any], p: str, inp: Any, args: dict[str, Any]) -> list:
        to = task["listen"]["to"]
        timeout = _timeout(task, self.document)
        if "all" in to:
            filters, where = to["all"], "all"
        elif "any" in to:
            filters, where = to["any"], "any"
        else:
            filters, where = [to["one"]], "one"
        pending: list[Action] = []
        events: list[Any] = []
        for i, spec in enumerate(filters):
            wanted = self._resolve(spec.get("with", {}), inp, args, p + "/listen")
            pointer = f"{p}/listen/to/{where}/{i}" if where != "one" else p
            try:
                got = self.action(
                    pointer, "listen", {"type": wanted.get("type"), "timeout": timeout}
                )
            except Suspended as suspended:
                pending.extend(suspended.actions)
                continue
            events.append(got)
        if pending:
            raise Suspended(pending)
        return events


# The journal's error types for a failed call, as the DSL's status and error type.
_FAILURES: dict[str, tuple[int, str]] = {
    "denied": (403, "authorization"),
    "circuit_open": (503, "communication"),
    "timeout": (408, "timeout"),
    "invalid_arguments": (400, "validation"),
    "unknown_tool": (400, "configuration"),
    "wait_cancelled": (500, "runtime"),
}


def _matches(errors: Any, error: dict[str, Any]) -> bool:
    """Whether a `catch.errors.with` filter matches. Standard types match by their name
    (the last segment): the CTK writes `.../dsl/errors/types/communication` for the spec's
    `.../spec/1.0.0/errors/communication`."""
    wanted = (errors or {}).get("with") or {}
    for key, value in wanted.items():
        have = error.get(key)
        if key == "type" and isinstance(value, str) and isinstance(have, str):
            if value != have and value.rsplit("/", 1)[-1] != have.rsplit("/", 1)[-1]:
                return False
        elif have != value:
            return False
    return True


def _may_retry(
    retry: dict[str, Any], attempt: int, error: dict, interp: Interpreter, args: dict, p: str
) -> bool:
    limit = (retry.get("limit") or {}).get("attempt") or {}
    count = limit.get("count")
    if count is not None and attempt >= int(count):
        return False
    if count is None and attempt >= 10:  # the DSL sets no default: Bosun bounds it at 10
        return False
    if "when" in retry and not interp._true(retry["when"], error, args, p + "/catch/retry"):
        return False
    return not (
        "exceptWhen" in retry and interp._true(retry["exceptWhen"], error, args, p + "/catch/retry")
    )


def _delay(retry: dict[str, Any], attempt: int) -> float:
    base = seconds(retry.get("delay", 0))
    backoff = retry.get("backoff") or {}
    if "exponential" in backoff:
        return base * (2**attempt)
    if "linear" in backoff:
        return base * (attempt + 1)
    return base


def _timeout(task: dict[str, Any], document: dict[str, Any]) -> float | None:
    timeout = task.get("timeout")
    if isinstance(timeout, str):  # a reference to `use.timeouts`
        timeout = ((document.get("use") or {}).get("timeouts") or {}).get(timeout)
    if isinstance(timeout, dict) and "after" in timeout:
        return seconds(timeout["after"])
    return None


__all__ = ["TIMEOUT", "Action", "Faulted", "Interpreter", "Outcome", "Suspended"]
