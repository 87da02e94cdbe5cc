"""YAML documents that remember where each field was written, read within fixed bounds.

Agent files and policy files share this: the document is composed with PyYAML
(which keeps each node's position), turned into plain Python while recording
the line of every key, validated with pydantic, and each validation error is
mapped back to the file, line and field it is about (with a "did you mean"
for a misspelt field).

Workers and the server read these files, so a broken or hostile file must fail
fast with an error naming the file and line, never hang the process:

- at most `MAX_BYTES` of UTF-8 text;
- at most `MAX_ALIASES` aliases, and at most `MAX_VALUES` values once aliases are
  expanded (a "billion laughs" file is a few dozen aliases that expand to 10^9 values:
  composing it is cheap, turning it into Python is not);
- nesting at most `MAX_DEPTH` levels deep (also through an alias of itself).

Only plain data comes out: mappings, lists, strings, numbers, booleans and null
(a timestamp stays the text it was written as); other tags are refused.
"""

from __future__ import annotations

import datetime
import difflib
import types
import typing
from collections.abc import Sequence
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent
from yaml.resolver import Resolver

from bosun.errors import SpecError

Path = tuple[str | int, ...]

MAX_BYTES = 1 << 20  # 1 MiB
MAX_VALUES = 50_000
MAX_ALIASES = 100
MAX_DEPTH = 64

_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"

try:  # libyaml parses about ten times faster than the pure-Python parser
    from yaml.cyaml import CParser as _Parser
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Parser(Reader, Scanner, Parser):  # type: ignore[no-redef]
        def __init__(self, stream: str):
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)


def read_file(path: str, what: str) -> str:
    """The text of an agent or policy file: at most `MAX_BYTES`, UTF-8."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        reason = getattr(exc, "strerror", None) or str(exc)
        raise SpecError(f"cannot read {what}: {reason}") from None
    if len(data) > MAX_BYTES:
        raise SpecError(
            f"{what}, line 1: the file is larger than {MAX_BYTES // 1024} KiB, the limit "
            "for agent and policy files; split it up (e.g. a policy file of its own)"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise SpecError(
            f"{what}, line {line}: not UTF-8 text (byte {exc.start}); save the file as UTF-8"
        ) from None


class _Alias:
    """Where a document wrote `*name`: the anchored node, and the alias's own position."""

    __slots__ = ("anchor", "start_mark", "target")

    def __init__(self, target: yaml.Node, anchor: str, start_mark: yaml.Mark):
        self.target = target
        self.anchor = anchor
        self.start_mark = start_mark


class _BoundedLoader(Composer, _Parser, Resolver):  # type: ignore[misc,valid-type]
    """PyYAML's composer, counting values, aliases and depth as it goes."""

    def __init__(self, text: str, what: str):
        _Parser.__init__(self, text)
        Composer.__init__(self)
        Resolver.__init__(self)
        self.what = what
        self.values = 0
        self.aliases = 0
        self.depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        line = event.start_mark.line + 1
        if self.check_event(AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                raise SpecError(
                    f"{self.what}, line {line}: more than {MAX_ALIASES} aliases (`*name`); "
                    "write the values out instead"
                )
            return _Alias(super().compose_node(parent, index), event.anchor, event.start_mark)
        self.values += 1
        if self.values > MAX_VALUES:
            raise SpecError(f"{self.what}, line {line}: {_too_many()}")
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise SpecError(f"{self.what}, line {line}: {_too_deep()}")
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _tag(node: yaml.Node) -> str:
    return node.tag.replace("tag:yaml.org,2002:", "!!")


def _too_many() -> str:
    return f"more than {MAX_VALUES:,} values; split the file up"


def _too_deep() -> str:
    return f"nested more than {MAX_DEPTH} levels deep"


def _line_of(exc: yaml.YAMLError, text: str) -> int:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is not None:
        return mark.line + 1
    position = getattr(exc, "position", None)  # a ReaderError: a character YAML forbids
    if isinstance(position, int):
        return text.count("\n", 0, position) + 1
    return 1


def compose(text: str, what: str) -> yaml.Node | None:
    """Parse YAML keeping positions; `what` ("agent file x.yaml") prefixes every error.

    Returns the root node (None for an empty document); call `to_python` on it.
    """
    if len(text) > MAX_BYTES:
        raise SpecError(f"{what}, line 1: longer than {MAX_BYTES // 1024} KiB, the limit")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate: not text any file can hold
        line = text.count("\n", 0, exc.start) + 1
        raise SpecError(f"{what}, line {line}: invalid character {text[exc.start]!r}") from None
    loader = _BoundedLoader(text, what)
    try:
        return loader.get_single_node()
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"{what}, line {_line_of(exc, text)}: invalid YAML: {problem}") from None
    except RecursionError:  # pragma: no cover - MAX_DEPTH stops far earlier
        raise SpecError(f"{what}, line 1: {_too_deep()}") from None
    finally:
        loader.dispose()


class _Converter:
    """Turns composed nodes into plain Python, with the expansion budget of `MAX_VALUES`."""

    def __init__(self, what: str, lines: dict[Path, int]):
        self.what = what
        self.lines = lines
        self.values = 0
        self.scalars = SafeConstructor()

    def fail(self, line: int, message: str) -> SpecError:
        return SpecError(f"{self.what}, line {line}: {message}")

    def value(self, node: Any, path: Path, depth: int) -> Any:
        line = node.start_mark.line + 1
        while isinstance(node, _Alias):
            node = node.target
        self.lines[path] = line
        self.values += 1
        if self.values > MAX_VALUES:
            raise self.fail(
                line,
                f"aliases here expand to more than {MAX_VALUES:,} values (a 'billion laughs' "
                "document?); write the values out or use fewer aliases",
            )
        if depth > MAX_DEPTH:
            raise self.fail(line, _too_deep() + " (an alias inside its own anchor?)")
        if isinstance(node, yaml.MappingNode):
            if node.tag != _MAP:
                raise self.fail(line, f"tag {_tag(node)} is not supported: write a plain mapping")
            return self.mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ:
                raise self.fail(line, f"tag {_tag(node)} is not supported: write a plain list")
            return [self.value(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        return self.scalar(node, line)

    def mapping(self, node: yaml.MappingNode, path: Path, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            while isinstance(key_node, _Alias):
                key_node = key_node.target
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.fail(line, "a key must be plain text, not a list or a mapping")
            key = key_node.value
            self.check_text(key, line)
            if key in out:
                where = field_name((*path, key), self.lines)
                first = self.lines[(*path, key)]
                raise self.fail(line, f"`{where}` is given twice (first on line {first})")
            out[key] = self.value(value_node, (*path, key), depth + 1)
            self.lines[(*path, key)] = line
        return out

    def scalar(self, node: yaml.ScalarNode, line: int) -> Any:
        try:
            value = self.scalars.construct_object(node)
        except Exception as exc:  # a tag PyYAML cannot build, or a value that does not fit it
            problem = getattr(exc, "problem", None) or str(exc) or type(exc).__name__
            raise self.fail(line, f"cannot read {_short(node.value)}: {problem}") from None
        if isinstance(value, datetime.date):  # JSON has no dates: keep the text as written
            return node.value
        if isinstance(value, bytes | bytearray):
            raise self.fail(line, "binary values are not supported: write text")
        if isinstance(value, int) and not -(2**63) <= value < 2**64:
            raise self.fail(line, f"the number {_short(value)} does not fit in 64 bits")
        if isinstance(value, str):
            self.check_text(value, line)
        return value

    def check_text(self, value: str, line: int) -> None:
        """Refuse a lone surrogate (`"\\ud800"`): no journal or JSON document can hold it."""
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise self.fail(line, "a lone surrogate (e.g. `\\ud800`) is not text") from None


def to_python(node: yaml.Node, path: Path, lines: dict[Path, int], what: str = "YAML") -> Any:
    """The node as plain Python; `lines` gets the 1-based line of every path."""
    return _Converter(what, lines).value(node, path, 0)


def load(text: str, what: str) -> tuple[Any, dict[Path, int]]:
    """The document as plain Python (None when empty), and the line of every path in it."""
    node = compose(text, what)
    lines: dict[Path, int] = {}
    if node is None:
        return None, lines
    return to_python(node, (), lines, what), lines


# -- validation errors -------------------------------------------------------


def line_for(loc: tuple[Any, ...], lines: dict[Path, int]) -> int:
    """The line of the deepest field of a pydantic error location that is in the file."""
    # pydantic adds union branch names to loc (e.g. 'ToolEntry', 'str'); keep real fields.
    path: list[str | int] = []
    for part in loc:
        candidate = (*path, part)
        if candidate in lines:
            path.append(part)
    while tuple(path) not in lines and path:
        path.pop()
    return lines.get(tuple(path), 1)


def field_name(loc: tuple[Any, ...], lines: dict[Path, int] | None = None) -> str:
    """A pydantic error location as the user wrote it: `tools[1].retry.max_attempts`.

    Without `lines` (a document built in Python) every index and lower-case name counts.
    """
    parts: list[str] = []
    path: list[str | int] = []
    for part in loc:
        candidate = (*path, part)
        if (
            (lines is not None and candidate in lines)
            or (isinstance(part, str) and part.islower())
            or (lines is None and isinstance(part, int))
        ):
            path.append(part)
            parts.append(f"[{part}]" if isinstance(part, int) else f".{part}")
    return "".join(parts).lstrip(".") or "(top level)"


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _models_in(annotation: Any) -> list[Any]:
    """The types an annotation may hold, with unions and Annotated unwrapped."""
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return [t for arg in typing.get_args(annotation) for t in _models_in(arg)]
    if origin is typing.Annotated:
        return _models_in(typing.get_args(annotation)[0])
    return [annotation]


def _step(annotation: Any, part: str | int) -> list[Any]:
    out: list[Any] = []
    for t in _models_in(annotation):
        origin, args = typing.get_origin(t), typing.get_args(t)
        if isinstance(t, type) and issubclass(t, BaseModel) and isinstance(part, str):
            field = t.model_fields.get(part)
            if field is not None:
                out.append(field.annotation)
        elif origin in (list, tuple, set, frozenset) and isinstance(part, int) and args:
            out.append(args[0])
        elif origin is dict and isinstance(part, str) and len(args) == 2:
            out.append(args[1])
    return out


def known_fields(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The field names valid at `loc` (the location of a mapping) in `model`."""
    current: list[Any] = [model]
    for part in loc:
        stepped = [t for c in current for t in _step(c, part)]
        if stepped:  # else `part` is a union branch pydantic names (e.g. 'ToolEntry')
            current = stepped
    names: list[str] = []
    for t in current:
        for m in _models_in(t):
            if isinstance(m, type) and issubclass(m, BaseModel):
                names.extend(n for n in m.model_fields if n not in names)
    return names


def did_you_mean(word: str, choices: Sequence[str], *, listing: str = "the fields here are") -> str:
    """`; did you mean `x`?`, or the choices when none is close (or "" with no choices)."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if close:
        return f"; did you mean `{close[0]}`?"
    if choices and len(choices) <= 12:
        return f"; {listing} " + ", ".join(f"`{c}`" for c in choices)
    return ""


def describe(
    err: Any, model: type[BaseModel] | None = None, *, plain_value_errors: bool = False
) -> str:
    """One pydantic error as a sentence about the field: "input should be ..., got 'ten'"."""
    loc = tuple(err["loc"])
    if err["type"] == "extra_forbidden" and loc:
        names = known_fields(model, loc[:-1]) if model is not None else []
        return "unknown field" + did_you_mean(str(loc[-1]), names)
    plain = plain_value_errors and err["type"] == "value_error"
    if plain:  # our own validators' messages are whole sentences; drop pydantic's prefix
        return str(err.get("ctx", {}).get("error", err["msg"]))
    message = err["msg"][0].lower() + err["msg"][1:]
    got = f", got {_short(err['input'])}" if err["type"] != "missing" else ""
    return message + got


def validation_error(
    exc: ValidationError,
    what: str,
    lines: dict[Path, int],
    *,
    model: type[BaseModel] | None = None,
    plain_value_errors: bool = False,
    limit: int = 5,
) -> SpecError:
    """One line per problem, in file order: "`what`, line N: `field`: message, got X".

    With `model` (the class validated), an unknown field gets a "did you mean". With
    `plain_value_errors`, messages our own validators raise (`ValueError`) are shown
    as written, without pydantic's "Value error, " prefix and the input.
    """
    problems = []
    for err in sorted(exc.errors(), key=lambda e: line_for(tuple(e["loc"]), lines)):
        loc = tuple(err["loc"])
        message = describe(err, model, plain_value_errors=plain_value_errors)
        problems.append(
            f"{what}, line {line_for(loc, lines)}: `{field_name(loc, lines)}`: {message}"
        )
    # Union members each report; the first line per field is the useful one.
    unique = list(dict.fromkeys(problems))
    return SpecError("\n".join(unique[:limit]))
