"""What a tool source serves about a tool, and the digest an agent version pins of it.

A tool's *definition* is everything the model and governance rely on that the source
decides: its name at the source, the description the model reads, the JSON schema of
its arguments, the effect, idempotency and trust the source declares, and which source
serves it (kind and identity). An agent version pins a sha256 of each definition
(canonical JSON: sorted keys, no whitespace) and one of the whole set. When a source
later serves something else under the same name (an MCP server that rewrites a tool's
description to steer the model: a "rug pull"), the digests differ and the engine refuses
the tool's calls until a new version is registered (see docs/tools.md).

The agent's own settings about a tool (an effect override, a timeout, retries) are not
part of the definition: they are pinned in the version's declaration, which the version
id hashes as a whole.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from bosun.spec.vocab import Effect

#: The sink declarations of a tool, by field name (see `bosun.spec.sinks`).
SINK_FIELDS: tuple[str, ...] = ("egress", "targets", "amounts")


def canonical_digest(value: Any) -> str:
    """sha256 of `value` as canonical JSON (keys sorted, compact): equal data, equal digest."""
    return hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """Which source serves a tool: its kind (`python`, later `mcp`, `agent`, `a2a`), its
    identity within the kind (a reference, a server's command or URL), and the settings a
    source of that kind needs to be opened. Sources are pooled by `(kind, identity)`."""

    kind: str
    identity: str
    config: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.identity)


@dataclass(frozen=True)
class ToolDefinition:
    """One tool as its source serves it (see the module docstring)."""

    name: str
    description: str
    parameters: dict[str, Any]
    effect: Effect = Effect.WRITE
    idempotent: bool = False
    trusted: bool = True
    source_kind: str = "python"
    source_id: str = ""
    # The source's own full form of the tool, when it has one beyond the fields above (an
    # MCP server's tool: title, input and output schema, annotations): hashed with the
    # rest, so a server that changes any of it changes the digest.
    served: dict[str, Any] | None = None
    # Which arguments are sinks (`bosun.spec.sinks`): where data goes (`egress`), what the
    # call changes or deletes (`targets`), how much it moves (`amounts`). Governance reads
    # them (default policy v2), so they are hashed with the rest.
    egress: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    amounts: tuple[str, ...] = ()

    def canonical(self) -> dict[str, Any]:
        """The JSON form that is pinned and hashed."""
        canonical = {
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters,
            "effect": str(self.effect),
            "idempotent": self.idempotent,
            "trusted": self.trusted,
            "source": {"kind": self.source_kind, "id": self.source_id},
        }
        if self.served is not None:  # absent for Python tools: their digests stay as they were
            canonical["served"] = self.served
        sinks = {k: list(v) for k in SINK_FIELDS if (v := getattr(self, k))}
        if sinks:  # absent when none are declared: older digests stay as they were
            canonical["sinks"] = sinks
        return canonical

    @functools.cached_property
    def digest(self) -> str:
        return canonical_digest(self.canonical())

    @classmethod
    def from_canonical(cls, data: dict[str, Any]) -> ToolDefinition:
        source = data.get("source") or {}
        return cls(
            name=data["name"],
            description=data["description"],
            parameters=data["parameters"],
            effect=Effect(data["effect"]),
            idempotent=data["idempotent"],
            trusted=data["trusted"],
            source_kind=source.get("kind", "python"),
            source_id=source.get("id", ""),
            served=data.get("served"),
            **{k: tuple(v) for k, v in (data.get("sinks") or {}).items() if k in SINK_FIELDS},
        )


def set_digest(digests: Iterable[tuple[str, str]]) -> str:
    """One digest for an agent's whole set of tools: (agent's tool name, definition digest)
    pairs, order-independent."""
    return canonical_digest(sorted(digests))


@dataclass(frozen=True, slots=True)
class Pin:
    """What one agent version pinned about one of its tools: where it comes from, its name
    there, and the digest its definition must still have."""

    source: SourceSpec
    served_name: str
    digest: str


__all__ = ["SINK_FIELDS", "Pin", "SourceSpec", "ToolDefinition", "canonical_digest", "set_digest"]
