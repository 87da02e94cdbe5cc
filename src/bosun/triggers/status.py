"""The one view of triggers every edge shows (CLI, API, console): each trigger's shared
row (counters, pause, last tick) with what the file says of it (kind, target)."""

from __future__ import annotations

from typing import Any

from bosun.store.base import Store
from bosun.triggers.spec import TriggersFile


async def listing(
    store: Store, file: TriggersFile | None = None, *, tenant: str | None = None
) -> list[dict[str, Any]]:
    """Every trigger with a row in the store (registered by a process serving it), plus
    those of `file` none has served yet; only `tenant`'s when given."""
    specs = {t.name: t for t in (file.triggers if file else [])}
    shown: list[dict[str, Any]] = []
    rows = {r.name: r for r in await store.triggers()}
    for name in sorted(set(rows) | set(specs)):
        row, spec = rows.get(name), specs.get(name)
        owner = row.tenant if row else spec.tenant  # type: ignore[union-attr]
        if tenant is not None and owner != tenant:
            continue
        shown.append(
            {
                "name": name,
                "tenant": owner,
                "kind": spec.kind if spec else None,
                "target": spec.target if spec else None,
                "paused": bool(row and row.paused),
                "last_tick": row.last_tick if row else None,
                "counters": row.counters() if row else dict.fromkeys(_COUNTERS, 0),
            }
        )
    return shown


_COUNTERS = ("received", "started", "deduplicated", "rejected", "dead_lettered")
