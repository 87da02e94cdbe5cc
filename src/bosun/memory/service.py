"""One store's memory: its facts and their recall, as a Runtime and the edges use them."""

from __future__ import annotations

from typing import Any

from bosun.memory.embed import Embedder
from bosun.memory.facts import Fact, Facts
from bosun.memory.recall import Recall
from bosun.store.base import Store


class Memory:
    def __init__(self, store: Store, embedder: Embedder | None = None):
        self.facts = Facts(store, embedder)
        self.recall = Recall(self.facts)

    @property
    def embedder(self) -> Embedder | None:
        return self.facts.embedder

    async def forget(self, tenant: str, fact_id: str, *, actor: str, reason: str = "") -> Fact:
        fact = await self.facts.forget(tenant, fact_id, actor=actor, reason=reason)
        self.recall.forgotten(tenant, fact.num)
        return fact

    async def close(self) -> None:
        aclose: Any = getattr(self.facts.embedder, "aclose", None)
        if aclose is not None:
            await aclose()


def run_scopes(tenant: str, user: str | None, agent: str, root: str) -> dict[str, tuple[str, str]]:
    """The scopes a run reads and may write: its user's (else the tenant's), its agent's, its
    tenant's, its tree's (the team scratchpad)."""
    return {
        "user": ("user", user) if user else ("tenant", "-"),
        "agent": ("agent", agent),
        "tenant": ("tenant", "-"),
        "team": ("team", root),
    }
