"""Long-term facts: written with provenance and scope, deduplicated, superseded, forgotten.

A fact is `value` about `subject`'s `attribute` (`order:1234` / `status` / `shipped`), or a
free note (`subject` and `attribute` empty). Its provenance: the run and tool call that
wrote it, the system it came from (`source`: a tool's name, or `model` when the model said
it without a tool), whether that source is trusted, when it was observed and until when it
holds. Its scope: tenant always, then one of user/<id>, agent/<name>, tenant/-, or
team/<root run id> (the run tree's shared scratchpad).

- The same value again (same scope, key and source) is a duplicate: it refreshes the
  observation time, it adds no row.
- A new value for the same key from the same source supersedes the current one (kept,
  with `superseded_by`, so history says what was believed when); from another source it
  stands beside it, and recall settles the disagreement (`bosun.memory.recall`).
- Forgetting deletes the row, its FTS row and its embeddings in one transaction, and the
  audit trail says who forgot what (the key, never the value).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from bosun.errors import BosunError, FactNotFound
from bosun.journal.audit import AuditEntry
from bosun.memory.db import Db
from bosun.store.base import Store

MAX_VALUE = 4000  # characters of one fact
COLUMNS = (
    "num, id, tenant, scope, scope_id, subject, attribute, value, source, trusted, run_id,"
    " call_id, observed_at, valid_until, superseded_by, created_at"
)
SCOPES = ("user", "agent", "tenant", "team")


@dataclass(frozen=True, slots=True)
class Fact:
    num: int
    id: str
    tenant: str
    scope: str
    scope_id: str
    subject: str
    attribute: str
    value: str
    source: str
    trusted: bool
    run_id: str | None
    call_id: str | None
    observed_at: float
    valid_until: float | None
    superseded_by: str | None
    created_at: float

    @property
    def kind(self) -> str:
        """The entity kind sources of truth are declared for: `order.status`."""
        if not self.attribute:
            return ""
        return f"{self.subject.partition(':')[0]}.{self.attribute}"

    def stale(self, now: float, max_age: float | None) -> bool:
        if self.valid_until is not None and self.valid_until < now:
            return True
        return max_age is not None and self.observed_at + max_age < now

    def shown(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "scope": f"{self.scope}/{self.scope_id}",
            "subject": self.subject,
            "attribute": self.attribute,
            "value": self.value,
            "source": self.source,
            "trusted": self.trusted,
            "run_id": self.run_id,
            "call_id": self.call_id,
            "observed_at": self.observed_at,
            "valid_until": self.valid_until,
            "superseded_by": self.superseded_by,
        }


def fact_of(row: Any) -> Fact:
    values = list(row)
    values[9] = bool(values[9])
    return Fact(*values)


@dataclass(frozen=True, slots=True)
class Written:
    fact: Fact
    status: str  # new | duplicate | superseded (it replaced `replaced`)
    replaced: tuple[str, ...] = ()


def _check(scope: str, subject: str, attribute: str, value: str) -> None:
    if scope not in SCOPES:
        raise BosunError(f"memory scope {scope!r}: write one of {', '.join(SCOPES)}")
    if not value.strip():
        raise BosunError("a fact needs a value: say what to remember")
    if len(value) > MAX_VALUE:
        raise BosunError(f"a fact holds at most {MAX_VALUE} characters, got {len(value)}")
    if attribute and not subject:
        raise BosunError(f"attribute {attribute!r} needs a subject, e.g. order:1234")


class Facts:
    """The facts of one store (both backends; `bosun.memory.db`)."""

    def __init__(self, store: Store, embedder: Any = None):
        self.store = store
        self.db = Db(store)
        self.embedder = embedder  # `bosun.memory.embed.Embedder`, or None: lexical only

    async def remember(
        self,
        *,
        tenant: str,
        scope: str,
        scope_id: str,
        value: str,
        subject: str = "",
        attribute: str = "",
        source: str = "model",
        trusted: bool = False,
        run_id: str | None = None,
        call_id: str | None = None,
        observed_at: float | None = None,
        valid_until: float | None = None,
    ) -> Written:
        _check(scope, subject, attribute, value)
        now = time.time()
        observed = observed_at if observed_at is not None else now
        key = (tenant, scope, scope_id, subject, attribute)
        current = [
            fact_of(r)
            for r in await self.db.rows(
                f"SELECT {COLUMNS} FROM memories WHERE tenant = ? AND scope = ? AND scope_id = ?"
                " AND subject = ? AND attribute = ? AND superseded_by IS NULL AND source = ?",
                (*key, source),
                what="read current facts",
            )
        ]
        same = next((f for f in current if f.value == value), None)
        if same is not None:  # a duplicate: the observation is refreshed, no new row
            await self.db.run(
                [
                    (
                        "UPDATE memories SET observed_at = ?, valid_until = ?, run_id = ?,"
                        " call_id = ? WHERE id = ? AND observed_at <= ?",
                        (observed, valid_until, run_id, call_id, same.id, observed),
                    )
                ],
                what=f"refresh fact {same.id}",
            )
            return Written(await self.get(tenant, same.id), "duplicate")
        fact_id = "mem_" + uuid.uuid4().hex[:20]
        # Free notes pile up only as distinct values; keyed facts supersede their key's.
        replaced = tuple(f.id for f in current) if attribute else ()
        statements: list[tuple[str, Any]] = [
            (
                "INSERT INTO memories(id, tenant, scope, scope_id, subject, attribute, value,"
                " source, trusted, run_id, call_id, observed_at, valid_until, superseded_by,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)"
                " RETURNING num",
                (
                    fact_id,
                    tenant,
                    scope,
                    scope_id,
                    subject,
                    attribute,
                    value,
                    source,
                    trusted,
                    run_id,
                    call_id,
                    observed,
                    valid_until,
                    now,
                ),
            )
        ]
        for old in replaced:
            statements.append(
                ("UPDATE memories SET superseded_by = ? WHERE id = ?", (fact_id, old))
            )
        rows = await self.db.run(statements, what="remember a fact")
        num = rows[0][0][0]
        after: list[tuple[str, Any]] = []
        if self.db.dialect == "sqlite":
            after.append(
                (
                    "INSERT INTO memories_fts(rowid, subject, attribute, value) VALUES (?, ?, ?, ?)",
                    (num, subject.replace(":", " "), attribute, value),
                )
            )
        if self.embedder is not None:
            vector = (await self.embedder.embed([_text(subject, attribute, value)]))[0]
            after.append(
                (
                    "INSERT INTO memory_vectors(num, tenant, model, dim, vector) VALUES (?, ?, ?, ?, ?)",
                    (
                        num,
                        tenant,
                        self.embedder.name,
                        len(vector),
                        vector.astype("float32").tobytes(),
                    ),
                )
            )
        if after:
            await self.db.run(after, what="index a fact")
        status = "superseded" if replaced else "new"
        return Written(await self.get(tenant, fact_id), status, replaced)

    async def get(self, tenant: str, fact_id: str) -> Fact:
        rows = await self.db.rows(
            f"SELECT {COLUMNS} FROM memories WHERE tenant = ? AND id = ?",
            (tenant, fact_id),
            what=f"read fact {fact_id}",
        )
        if not rows:
            raise FactNotFound(f"no memory {fact_id!r} in tenant {tenant}")
        return fact_of(rows[0])

    async def listing(
        self, tenant: str, scope: tuple[str, str] | None = None, *, limit: int = 100
    ) -> list[Fact]:
        """The tenant's current facts (in one scope: e.g. a run tree's team scratchpad), the
        newest first."""
        where, params = "", [tenant]
        if scope is not None:
            where, params = " AND scope = ? AND scope_id = ?", [tenant, *scope]
        rows = await self.db.rows(
            f"SELECT {COLUMNS} FROM memories WHERE tenant = ?{where}"
            " AND superseded_by IS NULL ORDER BY observed_at DESC, num DESC LIMIT ?",
            (*params, limit),
            what="list facts",
        )
        return [fact_of(r) for r in rows]

    async def history(self, tenant: str, fact: Fact) -> list[Fact]:
        """Every value its key has had (same scope), the oldest first."""
        rows = await self.db.rows(
            f"SELECT {COLUMNS} FROM memories WHERE tenant = ? AND scope = ? AND scope_id = ?"
            " AND subject = ? AND attribute = ? ORDER BY observed_at, num",
            (tenant, fact.scope, fact.scope_id, fact.subject, fact.attribute),
            what="read a fact's history",
        )
        return [fact_of(r) for r in rows] if fact.attribute else [fact]

    async def forget(self, tenant: str, fact_id: str, *, actor: str, reason: str = "") -> Fact:
        """Delete the fact and everything derived from it (FTS row, embeddings), audited."""
        fact = await self.get(tenant, fact_id)
        statements: list[tuple[str, Any]] = [
            ("DELETE FROM memory_vectors WHERE num = ?", (fact.num,)),
            ("DELETE FROM memories WHERE num = ?", (fact.num,)),
        ]
        if self.db.dialect == "sqlite":
            statements.insert(0, ("DELETE FROM memories_fts WHERE rowid = ?", (fact.num,)))
        await self.db.run(statements, what=f"forget {fact_id}")
        key = f"{fact.subject}.{fact.attribute}" if fact.attribute else "(note)"
        data = {"scope": f"{fact.scope}/{fact.scope_id}", "key": key, "reason": reason}
        await self.store.append_audit(
            [AuditEntry(time.time(), actor, "memory_forgotten", fact.id, data, tenant)]
        )
        return fact

    async def count(self, tenant: str | None = None) -> int:
        if tenant is None:
            rows = await self.db.rows("SELECT count(*) FROM memories", (), what="count facts")
        else:
            rows = await self.db.rows(
                "SELECT count(*) FROM memories WHERE tenant = ?", (tenant,), what="count facts"
            )
        return int(rows[0][0])


def _text(subject: str, attribute: str, value: str) -> str:
    """What a fact's embedding is of."""
    key = f"{subject.replace(':', ' ')} {attribute}".strip()
    return f"{key}: {value}" if key else value
