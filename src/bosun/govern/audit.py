"""Verify and export the audit trail (the hash chain itself is written by the store).

`verify` proves three things, each against something the audit table alone does not hold:

1. the chain: every record's hash covers its content and the previous record's hash, and
   seqs follow each other from the first record on (an edited, inserted or deleted record,
   or one cut from the start, breaks it);
2. the head: the chain reaches the head the store moved in the transaction of every append
   (`audit_head`), so records cut from the end are missed;
3. the journal: every journal event of a governance kind (`JOURNAL_ACTIONS`) that the store
   has chained has its record, so deleting records *and* rewriting the head is still seen.

And, given heads recorded elsewhere (`bosun audit head`, stored in a ticket or a WORM
bucket), that the chain still holds each of them at its seq. What it cannot prove: that
nobody rewrote the journal, the chain and the head consistently (someone with write access
to the whole database can); a head recorded elsewhere is what catches that, back to the
moment it was recorded.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import IO, Any

import orjson

from bosun.errors import BosunError
from bosun.journal.audit import GENESIS, JOURNAL_ACTIONS, chain_hash
from bosun.store.base import AuditRecord, Store

PAGE = 5_000
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True, slots=True)
class Head:
    """A point of the chain, as `bosun audit head` prints it and `--expect-head` reads it:
    the record at `seq` has `hash`, and the chain then had `count` records. `seq` and
    `count` are None when only a hash was recorded."""

    hash: str
    seq: int | None = None
    count: int | None = None
    ts: float | None = None

    def to_json(self) -> str:
        return orjson.dumps(
            {"seq": self.seq, "hash": self.hash, "count": self.count, "ts": self.ts}
        ).decode()

    @classmethod
    def parse(cls, text: str) -> Head:
        """A line `bosun audit head` printed, or a bare record hash."""
        text = text.strip()
        if len(text) == 64 and set(text.lower()) <= _HEX:
            return cls(text.lower())
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            value = None
        if (
            not isinstance(value, dict)
            or not isinstance(value.get("hash"), str)
            or not isinstance(value.get("seq"), int | None)
            or not isinstance(value.get("count"), int | None)
        ):
            raise BosunError(
                f"--expect-head {text[:80]!r}: give a line `bosun audit head` printed"
                ' (e.g. {"seq": 42, "hash": "ab12...", "count": 42}), a record hash (64 hex'
                " digits), or a file holding such lines"
            )
        return cls(value["hash"].lower(), value.get("seq"), value.get("count"), value.get("ts"))


def expected_heads(values: list[str]) -> list[Head]:
    """`--expect-head` values: JSON, a hash, or a file of such lines (one per line)."""
    heads: list[Head] = []
    for value in values:
        text = value.strip()
        if text.startswith("{") or (len(text) == 64 and set(text.lower()) <= _HEX):
            heads.append(Head.parse(text))
            continue
        if not os.path.isfile(value):
            raise BosunError(
                f"--expect-head {value!r} is not a head (JSON or a 64-digit hash) nor a file:"
                " give what `bosun audit head` printed, or the file you kept it in"
            )
        with open(value, encoding="utf-8") as f:
            lines = [line for line in f if line.strip()]
        if not lines:
            raise BosunError(f"--expect-head file {value} holds no head")
        heads.extend(Head.parse(line) for line in lines)
    return heads


@dataclass(frozen=True, slots=True)
class Verification:
    records: int
    ok: bool
    first_bad_seq: int | None = None
    problem: str | None = None
    head: Head | None = None  # the verified chain's last record (when ok)
    checked: dict[str, int] = field(default_factory=dict)  # what was cross-checked


async def _records(store: Store) -> AsyncIterator[AuditRecord]:
    after = 0
    while True:
        page = await store.audit_records(after, PAGE)
        for record in page:
            yield record
        if len(page) < PAGE:
            return
        after = page[-1].seq


def _bad(count: int, seq: int | None, problem: str) -> Verification:
    return Verification(count, False, seq, problem)


async def verify(store: Store, expect: list[Head] | None = None) -> Verification:
    """Recompute the chain, compare its end with the stored head and its records with the
    journal, and check it still holds each `expect`ed head; report the first problem."""
    # Read in this order: the chain only grows, so a chain read after the head and the
    # journal's counts holds everything they account for, whatever is written meanwhile.
    stored_head = await store.audit_head()
    journal = await store.journal_audit_counts()
    expect = expect or []
    by_seq = {h.seq: h for h in expect if h.seq is not None}
    by_hash = {h.hash for h in expect if h.seq is None}
    found: Counter[tuple[str, str]] = Counter()
    prev = GENESIS
    count = 0
    last: AuditRecord | None = None
    async for record in _records(store):
        count += 1
        if last is not None and record.seq != last.seq + 1:
            return _bad(count, last.seq + 1, f"record {last.seq + 1} is missing (deleted?)")
        if record.prev_hash != prev:
            return _bad(count, record.seq, "its link to the previous record does not match")
        if chain_hash(prev, record.entry) != record.hash:
            return _bad(count, record.seq, "its content does not match its hash (edited?)")
        if record.seq in by_seq:
            problem = _at(by_seq[record.seq], record, count)
            if problem:
                return _bad(count, record.seq, problem)
        by_hash.discard(record.hash)
        if (
            stored_head is not None
            and record.seq == stored_head.seq
            and (record.hash != stored_head.hash or count != stored_head.count)
        ):
            return _bad(
                count,
                record.seq,
                f"the chain's head says record {stored_head.seq} has hash"
                f" {stored_head.hash[:12]}... and {stored_head.count} records lead to it;"
                f" the chain has {record.hash[:12]}... and {count}",
            )
        if record.entry.action in JOURNAL_ACTIONS:
            found[(record.entry.subject, record.entry.action)] += 1
        prev = record.hash
        last = record
    end = last.seq if last is not None else 0
    if stored_head is None:
        return _bad(count, None, "the chain's head row (table audit_head) is missing (deleted?)")
    if end < stored_head.seq:
        return _bad(
            count,
            end + 1,
            f"the chain ends at record {end} but its head is record {stored_head.seq}: the"
            f" records after {end} were deleted",
        )
    for head in expect:
        if head.seq is not None and head.seq > end:
            return _bad(
                count,
                end + 1,
                f"the chain ends at record {end}, before the head recorded at record"
                f" {head.seq}: the records after {end} were deleted",
            )
    if by_hash:
        missing = sorted(by_hash)[0]
        return _bad(count, None, f"no record has the recorded head hash {missing[:12]}...")
    for (run_id, action), n in sorted(journal.items()):
        if found[(run_id, action)] < n:
            return _bad(
                count,
                None,
                f"run {run_id}'s journal holds {n} {action} events but the chain only"
                f" {found[(run_id, action)]} records of them (deleted?)",
            )
    head = Head(prev, end, count, last.entry.ts if last is not None else None)
    checked = {"journal_events": sum(journal.values()), "expected_heads": len(expect)}
    return Verification(count, True, head=head, checked=checked)


def _at(expected: Head, record: AuditRecord, count: int) -> str | None:
    if record.hash != expected.hash:
        return (
            f"the head recorded for record {record.seq} has hash {expected.hash[:12]}...; the"
            f" chain now has {record.hash[:12]}... (rewritten?)"
        )
    if expected.count is not None and expected.count != count:
        return (
            f"the head recorded for record {record.seq} counted {expected.count} records;"
            f" the chain now has {count} up to it"
        )
    return None


async def export(store: Store, out: IO[bytes]) -> int:
    """Write the trail as JSON lines (one record per line, with its hashes). Returns the count."""
    count = 0
    async for r in _records(store):
        e = r.entry
        line: dict[str, Any] = {
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
