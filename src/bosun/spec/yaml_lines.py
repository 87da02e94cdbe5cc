"""YAML documents that remember where each field was written.

Agent files and policy files share this: the document is composed with PyYAML
(which keeps each node's position), turned into plain Python while recording
the line of every key, validated with pydantic, and each validation error is
mapped back to the file, line and field it is about.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import ValidationError

from bosun.errors import SpecError

Path = tuple[str | int, ...]


def to_python(node: yaml.Node, path: Path, lines: dict[Path, int]) -> Any:
    """The node as plain Python; `lines` gets the 1-based line of every path."""
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out = {}
        for key_node, value_node in node.value:
            key = key_node.value
            lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = to_python(value_node, (*path, key), lines)
            lines[(*path, key)] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [to_python(item, (*path, i), lines) for i, item in enumerate(node.value)]
    return yaml.safe_load(yaml.serialize(node))


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


def field_name(loc: tuple[Any, ...], lines: dict[Path, int]) -> str:
    """A pydantic error location as the user wrote it: `tools[1].retry.max_attempts`."""
    parts: list[str] = []
    path: list[str | int] = []
    for part in loc:
        candidate = (*path, part)
        if candidate in lines or (isinstance(part, str) and part.islower()):
            path.append(part)
            parts.append(f"[{part}]" if isinstance(part, int) else f".{part}")
    return "".join(parts).lstrip(".") or "(top level)"


def compose(text: str, what: str) -> yaml.Node | None:
    """Parse YAML keeping positions; `what` ("agent file x.yaml") prefixes syntax errors.

    Returns the root node (None for an empty document); call `to_python` on it.
    """
    try:
        node = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(f"{what}, line {line}: invalid YAML: {problem}") from None
    return node


def validation_error(
    exc: ValidationError,
    what: str,
    lines: dict[Path, int],
    *,
    plain_value_errors: bool = False,
    limit: int = 5,
) -> SpecError:
    """One line per problem, in file order: "`what`, line N: `field`: message, got X".

    With `plain_value_errors`, messages our own validators raise (`ValueError`) are
    shown as written, without pydantic's "Value error, " prefix and the input.
    """
    problems = []
    for err in sorted(exc.errors(), key=lambda e: line_for(tuple(e["loc"]), lines)):
        loc = tuple(err["loc"])
        plain = plain_value_errors and err["type"] == "value_error"
        got = f", got {err['input']!r}" if err["type"] != "missing" and not plain else ""
        if plain:
            # Our own validators' messages are whole sentences; drop pydantic's prefix.
            message = str(err.get("ctx", {}).get("error", err["msg"]))
        else:
            message = err["msg"][0].lower() + err["msg"][1:]
        problems.append(
            f"{what}, line {line_for(loc, lines)}: `{field_name(loc, lines)}`: {message}{got}"
        )
    # Union members each report; the first line per field is the useful one.
    unique = list(dict.fromkeys(problems))
    return SpecError("\n".join(unique[:limit]))
