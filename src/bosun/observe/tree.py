"""A run tree, ordered for display: one projection shared by `bosun show` and the console.

Parents come before their children and siblings oldest first, so every edge draws the same
tree. A run whose parent is not in the list (a page of a large tree) is drawn at the top
rather than dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from bosun.store.base import RunRecord, Store

N = TypeVar("N", bound=Any)  # a store RunRecord (`id`) or the API's Run (`run_id`)

# A tree this large is paged by the edges rather than drawn whole.
MAX_TREE = 1000


def ordered_tree(runs: Sequence[N], *, id_field: str = "id") -> list[tuple[int, N]]:
    """(depth, run) in drawing order: depth 0 for the root (and for orphans of a page)."""
    id_of = attrgetter(id_field)
    ids = {id_of(r) for r in runs}
    children: dict[str | None, list[N]] = {}
    for r in sorted(runs, key=lambda r: (r.created_at, id_of(r))):
        children.setdefault(r.parent_id if r.parent_id in ids else None, []).append(r)
    out: list[tuple[int, N]] = []
    stack: list[tuple[int, N]] = [(0, r) for r in reversed(children.get(None, []))]
    while stack:  # iterative: a deep chain of sub-agents never hits the recursion limit
        depth, run = stack.pop()
        out.append((depth, run))
        stack.extend((depth + 1, c) for c in reversed(children.get(id_of(run), [])))
    return out


async def tree_path(
    store: Store, run_id: str, known: dict[str, RunRecord | None] | None = None
) -> list[tuple[str, str]]:
    """(agent, run id) from the root of the run's tree down to the run itself: where an
    approval deep in a tree was asked (`bosun approvals`, the API, the console inbox).
    One read per level; `known` caches the runs across calls (an inbox of one tree reads
    each ancestor once)."""
    cache = known if known is not None else {}
    path: list[tuple[str, str]] = []
    current: str | None = run_id
    while current is not None and all(current != r for _, r in path):
        if current not in cache:
            cache[current] = await store.get_run(current)
        run = cache[current]
        if run is None:
            break
        path.append((run.agent, run.id))
        current = run.parent_id
    return path[::-1]


def path_text(path: Sequence[tuple[str, str]]) -> str:
    """`lead (run_a) > billing (run_b) > biller (run_c)`."""
    return " > ".join(f"{agent} ({run_id})" for agent, run_id in path)
