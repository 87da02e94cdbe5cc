"""Run trees in SQL, written once for both dialects.

A run and every run it started, down the tree, found by `parent_id`: cancels and
pauses cascade through it so that no child outlives a cancelled parent (orphaned
background children are what other frameworks' users report). `WITH RECURSIVE`
reads the same on SQLite and PostgreSQL; only the placeholder differs.
"""

from __future__ import annotations


def subtree(placeholder: str) -> str:
    """A subquery of the ids of the run `placeholder` names and all its descendants."""
    return (
        "(WITH RECURSIVE tree(id) AS (SELECT " + placeholder + " UNION"
        " SELECT r.id FROM runs r JOIN tree t ON r.parent_id = t.id) SELECT id FROM tree)"
    )


SQLITE_SUBTREE = subtree("?")
POSTGRES_SUBTREE = subtree("%s::text")
