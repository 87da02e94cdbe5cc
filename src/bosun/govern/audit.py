"""Verify and export the audit trail (the hash chain itself is written by the store)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import IO

import orjson

from bosun.journal.audit import GENESIS, chain_hash
from bosun.store.base import AuditRecord, Store

PAGE = 5_000


@dataclass(frozen=True, slots=True)
class Verification:
    records: int
    ok: bool
    first_bad_seq: int | None = None
    problem: str | None = None


async def _records(store: Store) -> AsyncIterator[AuditRecord]:
    after = 0
    while True:
        page = await store.audit_records(after, PAGE)
        for record in page:
            yield record
        if len(page) < PAGE:
            return
        after = page[-1].seq


async def verify(store: Store) -> Verification:
    """Recompute the chain; report the first record whose content or link does not match."""
    prev = GENESIS
    count = 0
    expected_seq = None
    async for record in _records(store):
        count += 1
        if expected_seq is not None and record.seq != expected_seq:
            return Verification(
                count, False, expected_seq, f"record {expected_seq} is missing (deleted?)"
            )
        if record.prev_hash != prev:
            return Verification(
                count, False, record.seq, "its link to the previous record does not match"
            )
        if chain_hash(prev, record.entry) != record.hash:
            return Verification(
                count, False, record.seq, "its content does not match its hash (edited?)"
            )
        prev = record.hash
        expected_seq = record.seq + 1
    return Verification(count, True)


async def export(store: Store, out: IO[bytes]) -> int:
    """Write the trail as JSON lines (one record per line, with its hashes). Returns the count."""
    count = 0
    async for r in _records(store):
        e = r.entry
        line = {
            "seq": r.seq,
            "ts": e.ts,
            "tenant": e.tenant,
            "actor": e.actor,
            "action": e.action,
            "subject": e.subject,
            "data": e.data,
            "prev_hash": r.prev_hash,
            "hash": r.hash,
        }
        out.write(orjson.dumps(line, option=orjson.OPT_NON_STR_KEYS) + b"\n")
        count += 1
    return count
