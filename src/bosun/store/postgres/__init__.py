"""PostgreSQL store: many workers on many machines share one database.

Two plain connections per store: one belongs to the group-commit writer, the
other (behind a lock) serves reads, claims and the rest. Group commit:
`append` calls queued while the writer is idle or busy are written together in
one transaction, each still fenced by its own lease check.

Claims use `FOR UPDATE SKIP LOCKED`, and lease expiry is judged by the
database's clock, so workers whose clocks disagree still never share a run.
Times are stored as epoch seconds (float), as in SQLite.

When the database goes away (a restart, `pg_terminate_backend`, a network cut), a
connection the server closed is replaced before its next use, and a call that fails
anyway raises `StoreUnavailable` at once: the next call connects again. Appends are the
exception: their callers hold what exists nowhere else yet (a tool call's result), so the
writer keeps trying them for up to `write_retry_seconds` before it gives up. Connections
are named `bosun` in `pg_stat_activity` unless the URL sets `application_name`.

The store is built from one mixin per concern, the same files as `bosun.store.sqlite`:
`runs` (connections, run rows, reads, status, retention), `journal` (the group-commit
writer), `leases`, `governance`, `audit`, `access`, `observe`, `waits`, `artifacts` (a bytea table), `triggers`, `push` (A2A push configs and outbox), `schema` + `migrations`,
`errors` (redacted messages, dead connections).
"""

from __future__ import annotations

from bosun.store.base import Store
from bosun.store.postgres.access import PostgresAccess
from bosun.store.postgres.artifacts import PostgresArtifacts
from bosun.store.postgres.audit import PostgresAudit
from bosun.store.postgres.errors import redact
from bosun.store.postgres.governance import PostgresGovernance
from bosun.store.postgres.journal import PostgresJournal
from bosun.store.postgres.leases import PostgresLeases
from bosun.store.postgres.observe import PostgresObserve
from bosun.store.postgres.push import PostgresPush
from bosun.store.postgres.router import PostgresRouter
from bosun.store.postgres.runs import PostgresRuns
from bosun.store.postgres.triggers import PostgresTriggers
from bosun.store.postgres.waits import PostgresWaits


class PostgresStore(
    PostgresRuns,
    PostgresJournal,
    PostgresLeases,
    PostgresGovernance,
    PostgresAudit,
    PostgresAccess,
    PostgresObserve,
    PostgresWaits,
    PostgresArtifacts,
    PostgresTriggers,
    PostgresRouter,
    PostgresPush,
    Store,
):
    """The shared store: every concern's mixin over two connections (see the module)."""


__all__ = ["PostgresStore", "redact"]
