"""Sinks: the arguments of a tool through which an injected instruction does harm.

Prompt injection needs a value from text a third party wrote to reach an argument that
matters. Effect classes (`read`/`write`/`irreversible`) say how bad a call is; sinks say
which of its arguments to watch:

- `egress`: where data goes (recipients, URLs, channels, accounts, phone numbers); a read
  tool that fetches a URL has an egress too (the URL carries data out, and an
  attacker-chosen one is how a page exfiltrates);
- `targets`: what the call changes or deletes (a file, a record, an event id);
- `amounts`: how much it moves (a payment's amount, a quantity).

Python tools declare them (`@tool(egress=("to",), targets=("file_id",))`, pinned in the
tool's definition, so part of its digest); YAML entries may set them (`egress: [to]`);
MCP tools get defaults from their schema's property names (`mcp_defaults`), which the
operator overrides in the `mcp:` entry. Default policy v2 (`bosun.govern.defaults`)
holds a call whose sink argument the user did not supply.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bosun.errors import SpecError
from bosun.spec.definition import SINK_FIELDS

#: Kind of each sink field, as policies and provenance records name it.
SINK_KIND: dict[str, str] = {"egress": "egress", "targets": "target", "amounts": "amount"}

_EGRESS = frozenset(
    {
        "to",
        "recipient",
        "recipients",
        "cc",
        "bcc",
        "email",
        "emails",
        "url",
        "uri",
        "endpoint",
        "webhook",
        "channel",
        "account",
        "iban",
        "phone",
    }
)
_EGRESS_SUFFIX = ("_email", "_url", "_uri", "_iban", "_account", "_phone", "_channel", "_webhook")
_TARGET = frozenset({"id", "path", "file", "record"})
_TARGET_SUFFIX = ("_id", "_ids", "_path", "_file", "_record")
_AMOUNT = frozenset({"amount", "sum", "price", "quantity"})
_AMOUNT_SUFFIX = ("_amount", "_price", "_quantity")
_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


def _snake(name: str) -> str:
    """`recipientEmail` and `Recipient-Email` -> `recipient_email`."""
    return "_".join(w.lower() for w in _WORD.findall(name))


def sink_kind_of(name: str) -> str | None:
    """The sink field (`egress`, `targets`, `amounts`) a schema property's name suggests."""
    snake = _snake(name)
    if snake in _EGRESS or snake.endswith(_EGRESS_SUFFIX):
        return "egress"
    if snake in _TARGET or snake.endswith(_TARGET_SUFFIX):
        return "targets"
    if snake in _AMOUNT or snake.endswith(_AMOUNT_SUFFIX):
        return "amounts"
    return None


def properties_of(schema: Mapping[str, Any] | None) -> list[str]:
    props = (schema or {}).get("properties")
    return list(props) if isinstance(props, Mapping) else []


def mcp_defaults(schema: Mapping[str, Any] | None) -> dict[str, tuple[str, ...]]:
    """Sinks from a served schema's top-level property names (see the module docstring)."""
    found: dict[str, list[str]] = {f: [] for f in SINK_FIELDS}
    for name in properties_of(schema):
        kind = sink_kind_of(name)
        if kind is not None:
            found[kind].append(name)
    return {f: tuple(v) for f, v in found.items()}


SinkSetting = Sequence[str] | Mapping[str, Sequence[str]] | None


def overridden(
    tool: str, defaults: dict[str, tuple[str, ...]], settings: Mapping[str, SinkSetting]
) -> dict[str, tuple[str, ...]]:
    """An MCP tool's sinks after the operator's `egress:`/`targets:`/`amounts:` settings: a
    list replaces the default for every tool of the entry (names a tool lacks are left
    out); a mapping of tool globs to lists replaces it for the matching tools only."""
    result = dict(defaults)
    for field, setting in settings.items():
        if setting is None:
            continue
        if isinstance(setting, Mapping):
            for pattern, names in setting.items():
                if fnmatch.fnmatchcase(tool, pattern):
                    result[field] = tuple(names)
        else:
            result[field] = tuple(setting)
    return result


def checked(what: str, params: Iterable[str], sinks: Mapping[str, Iterable[str]]) -> None:
    """A sink must name one of the tool's arguments (a typo would watch nothing)."""
    known = list(params)
    for field, names in sinks.items():
        for name in names:
            if name not in known:
                raise SpecError(
                    f"{what}: `{field}` names argument {name!r}, which it does not take"
                    f" (its arguments: {', '.join(known) or 'none'})"
                )


__all__ = ["SINK_KIND", "checked", "mcp_defaults", "overridden", "sink_kind_of"]
