"""Driving one run tree in this process: what `Runtime.run` does after the root's first
drive parks on its children. A mixin of `Runtime` (which provides the state below).

The runs are driven concurrently, as asyncio tasks (at most `TREE_CONCURRENCY` at once):
the children of a fan-out run side by side, and a parent woken by one child's end
journals that result while its siblings still run. What this process queued itself (the
children its drives started, the parents their ends woke) it claims by id, a woken parent
first; the tree's queue is listed only when that runs out, and once more before it returns
(another process may have queued a run of the tree). A sub-agent call so costs two claims
and one listing, not a listing after every drive.
"""

from __future__ import annotations

import asyncio
import collections
from typing import TYPE_CHECKING

from bosun.spec.vocab import TERMINAL_STATUSES, RunStatus
from bosun.store.base import RunRecord, Store

if TYPE_CHECKING:
    from bosun.engine.runtime import RunResult


class TreeDriver:
    """`Runtime._drive_tree` and the hints it claims by id (see the module docstring)."""

    store: Store
    owner: str
    lease_seconds: float
    _trees: dict[str, collections.deque[str]]  # root id -> runs queued here, to claim first

    async def drive(self, run: RunRecord) -> RunResult:
        raise NotImplementedError

    async def result(self, run_id: str) -> RunResult:
        raise NotImplementedError

    def queued_here(self, run: RunRecord) -> None:
        """A child run this process just queued: claimed next by its tree's drive, if this
        process drives that tree."""
        hints = self._trees.get(run.root_id or "")
        if hints is not None:
            hints.append(run.id)

    async def _drive_tree(self, root_id: str) -> RunResult:
        """Drive the queued runs of one tree here (children, then the parents they woke)
        until none is left that this process can claim; returns the root's result.

        Runs are driven concurrently, as asyncio tasks (at most `TREE_CONCURRENCY` at once):
        the children of a fan-out run side by side, and a parent woken by one child's end
        journals that result while its siblings still run (it is claimed first). What this
        process queued (children its drives started, parents their ends woke) is claimed by
        id; the tree's queue is listed only when that runs out, and once more to finish
        (another process may have queued a run of it)."""
        owned = root_id not in self._trees  # else `run` registered it (and drops it)
        hints = self._trees.setdefault(root_id, collections.deque())
        driving: dict[str, asyncio.Task[RunResult]] = {}
        parents: dict[str, str | None] = {}  # driving run -> its parent
        root: RunResult | None = None  # the root's latest drive, if it was driven here
        try:
            while True:
                hinted = False
                while hints and len(driving) < TREE_CONCURRENCY:
                    run_id = hints.popleft()
                    if run_id in driving:
                        continue
                    claimed = await self.store.claim_one(
                        self.owner, run_id, lease_seconds=self.lease_seconds
                    )
                    if claimed is not None:
                        hinted = True
                        parents[run_id] = claimed.parent_id
                        driving[run_id] = asyncio.create_task(
                            self.drive(claimed), name=f"tree-{run_id}"
                        )
                free = TREE_CONCURRENCY - len(driving)
                if free > 0 and not hinted:
                    queued = await self.store.list_runs(
                        root_id=root_id, status=RunStatus.QUEUED, limit=free + len(driving)
                    )
                    for run in reversed(queued):  # oldest first
                        if run.id in driving or len(driving) >= TREE_CONCURRENCY:
                            continue
                        claimed = await self.store.claim_one(
                            self.owner, run.id, lease_seconds=self.lease_seconds
                        )
                        if claimed is not None:
                            parents[run.id] = claimed.parent_id
                            task = asyncio.create_task(self.drive(claimed), name=f"tree-{run.id}")
                            driving[run.id] = task
                if not driving:
                    # Finished here: what its drive returned is what its journal says.
                    if root is not None and root.status in TERMINAL_STATUSES:
                        return root
                    return await self.result(root_id)
                done, _ = await asyncio.wait(driving.values(), return_when=asyncio.FIRST_COMPLETED)
                for run_id, task in list(driving.items()):
                    if task in done:
                        del driving[run_id]
                        result = task.result()  # a drive that raised stops the tree's drive
                        parent = parents.pop(run_id, None)
                        if run_id == root_id:
                            root = result
                        elif parent is not None and result.status in TERMINAL_STATUSES:
                            hints.appendleft(parent)  # its end woke the parent: first
        finally:
            if owned:
                self._trees.pop(root_id, None)
            for task in driving.values():
                task.cancel()
            if driving:
                await asyncio.gather(*driving.values(), return_exceptions=True)


# Runs of one tree `Runtime.run` drives at once in this process (like a Worker's concurrency).
TREE_CONCURRENCY = 100


__all__ = ["TREE_CONCURRENCY", "TreeDriver"]
