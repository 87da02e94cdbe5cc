"""Runtime expressions: jq, as the DSL says (`${ ... }`), with its arguments as variables.

A string is an expression when it is written `${ ... }`; the fields the DSL defines as
expressions (`if`, `when`, `input.from`, `output.as`, `export.as`, `for.in`, `while`)
are expressions written bare too (`'.color == "red"'`). Compiled programs are cached by
their text and argument names: a workflow evaluates the same few expressions again and
again (every turn replays the run from its start, see `interpreter.py`).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import jq
import orjson

EXPRESSION_ERROR = "https://serverlessworkflow.io/spec/1.0.0/errors/expression"


class ExpressionFailed(Exception):
    """An expression that does not compile or fails on its data (an `expression` error)."""


def is_expression(value: Any) -> bool:
    return isinstance(value, str) and value.strip().startswith("${") and value.strip().endswith("}")


def strip(text: str) -> str:
    """`${ .a }` as `.a`; a bare expression unchanged."""
    text = text.strip()
    return text[2:-1].strip() if is_expression(text) else text


@lru_cache(maxsize=4096)
def _compiled(program: str, names: tuple[str, ...]) -> Any:
    """The program compiled once, its arguments bound from its input: it runs on
    `[data, {name: value}]` (jq's own `args` would need a compile per evaluation)."""
    binds = "".join(f".[1].{n} as ${n} | " for n in names)
    try:
        return jq.compile(f"{binds}.[0] | ({program})")
    except ValueError as exc:
        raise ExpressionFailed(f"{program!r} does not compile: {exc}") from None


@lru_cache(maxsize=4096)
def _used(program: str) -> frozenset[str]:
    return frozenset(re.findall(r"\$([A-Za-z_][A-Za-z0-9_]*)", program))


def evaluate(text: str, data: Any, args: dict[str, Any]) -> Any:
    """One expression on `data` with `args` as `$name`s; its first result (null if none).
    Only the arguments the program names are bound (and converted for jq): `$workflow`
    holds the whole document, which most expressions never read."""
    program = strip(text)
    used = _used(program)
    bound = {k: v for k, v in args.items() if k in used}
    try:
        given = orjson.dumps([data, bound])
    except TypeError as exc:
        raise ExpressionFailed(f"{program!r}: its data is not JSON ({exc})") from None
    key = (program, given)
    cached = _RESULTS.get(key)
    if cached is not None:
        return orjson.loads(cached)  # a fresh copy: callers may keep and change it
    compiled = _compiled(program, tuple(sorted(bound)))
    try:
        results = compiled.input_text(given.decode()).all()
    except ValueError as exc:
        raise ExpressionFailed(f"{program!r} failed: {exc}") from None
    result = results[0] if results else None
    if not _IMPURE.search(program):
        if len(_RESULTS) >= MAX_CACHED:
            _RESULTS.pop(next(iter(_RESULTS)))
        _RESULTS[key] = orjson.dumps(result)
    return result


# Results by (program, input): a workflow's turn replays the run from its start, so it
# evaluates the same expressions on the same data again; jq is pure except for these.
_RESULTS: dict[tuple[str, bytes], bytes] = {}
MAX_CACHED = 50_000
_IMPURE = re.compile(r"\b(now|env|input|inputs|input_filename|debug|stderr)\b|\$ENV|\$__loc__")


def resolve(value: Any, data: Any, args: dict[str, Any]) -> Any:
    """`value` with every `${ ... }` string in it evaluated (objects and lists walked)."""
    if isinstance(value, str):
        return evaluate(value, data, args) if is_expression(value) else value
    if isinstance(value, dict):
        return {k: resolve(v, data, args) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, data, args) for v in value]
    return value


def truthy(text: str, data: Any, args: dict[str, Any]) -> bool:
    """A condition (`if`, `when`, `while`): jq's truth (only false and null are false)."""
    result = evaluate(text, data, args)
    return result is not None and result is not False


def clear_cache() -> None:
    """Forget cached results (a benchmark measuring one run from cold)."""
    _RESULTS.clear()
