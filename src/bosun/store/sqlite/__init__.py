"""Embedded SQLite store: WAL mode, group commit.

Every call runs on the event loop's thread: a WAL commit with
`synchronous=NORMAL` takes tens of microseconds, far less than a thread hop.
`synchronous=NORMAL` in WAL mode survives the process being killed at any
point (the OS holds the written pages); only a power loss can drop the last
commits, as with the peers' default settings.

Group commit: `append` calls made in the same event-loop tick are written in
one transaction, so a thousand concurrent runs share one commit.

Projections stay off a step's commit, which writes only the journal (and the
run's row when its status changes):

- Audit records of journal events (policy decisions, approvals requested, ...):
  the event is committed with the step; its hash-chained record follows within
  `CATCH_UP_DELAY` seconds, or at once when the run stops running (parks,
  pauses, finishes) or `AUDIT_BATCH` records wait. Each run's `audited_seq`
  says up to where its journal is in the chain, so a worker that takes over a
  crashed run adds what the dead one had not written yet, never twice.
- The totals in a running run's row (steps, tokens, cost, tool calls) are
  written with the same catch-up; readers add what the journal holds past the
  row's `last_seq` (see `batch.EXACT_RUN_COLUMNS`), so every read is exact, from any process.

A database that cannot be written (a full disk, a lock held past `busy_timeout`, an I/O
error) fails the call with `StoreUnavailable`, and the store works again once the cause
is gone. An append waits instead, trying again for up to `write_retry_seconds`: its
caller holds what exists nowhere else yet (a tool call's result). Every public method
raises `StoreError`, never sqlite3's own errors (`errors`).

The store is built from one mixin per concern, the same files as `bosun.store.postgres`:
`runs` (connection, run rows, reads, status, retention), `journal` (the group-commit
writer), `leases`, `governance`, `audit` (the chain and its catch-up), `access`,
`observe`, `waits`, `artifacts` (files beside the database), `triggers` (triggers' counters and deliveries), `push` (A2A push configs and outbox), `schema` + `migrations` (the layout and its numbered steps), `errors`.
`batch` holds what a group commit carries and the SQL the mixins share.
"""

from __future__ import annotations

from bosun.store.base import Store
from bosun.store.sqlite.access import SqliteAccess
from bosun.store.sqlite.artifacts import SqliteArtifacts
from bosun.store.sqlite.audit import SqliteAudit
from bosun.store.sqlite.batch import AUDIT_BATCH, BREAKER_READ_EVERY, CATCH_UP_DELAY
from bosun.store.sqlite.errors import raising_store_errors
from bosun.store.sqlite.governance import SqliteGovernance
from bosun.store.sqlite.journal import SqliteJournal
from bosun.store.sqlite.leases import SqliteLeases
from bosun.store.sqlite.observe import SqliteObserve
from bosun.store.sqlite.push import SqlitePush
from bosun.store.sqlite.router import SqliteRouter
from bosun.store.sqlite.runs import SqliteRuns
from bosun.store.sqlite.triggers import SqliteTriggers
from bosun.store.sqlite.waits import SqliteWaits


@raising_store_errors
class SqliteStore(
    SqliteArtifacts,  # first: it provides what `SqliteRuns.gc` declares
    SqliteRuns,
    SqliteJournal,
    SqliteLeases,
    SqliteGovernance,
    SqliteAudit,
    SqliteAccess,
    SqliteObserve,
    SqliteWaits,
    SqliteTriggers,
    SqliteRouter,
    SqlitePush,
    Store,
):
    """The embedded store: every concern's mixin over one connection (see the module)."""


__all__ = ["AUDIT_BATCH", "BREAKER_READ_EVERY", "CATCH_UP_DELAY", "SqliteStore"]
