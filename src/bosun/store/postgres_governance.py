"""PostgreSQL store, governance half: approvals, kill switches, rate limits, spend, audit chain.

The audit chain is one sequence for the whole database, so every transaction
that extends it takes an advisory lock first (and takes it last among its
locks, so it cannot deadlock with row locks): no two writers ever chain onto
the same previous record, whichever process they run in. The same transaction
moves the chain's head (`audit_head`), so records cut from the end are seen.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence

import orjson
import psycopg

from bosun.errors import StoreError
from bosun.journal.audit import (
    AUDITED_KINDS,
    GENESIS,
    AuditEntry,
    chain_hash,
    needs_redaction,
    redacted,
)
from bosun.journal.redact import Sensitivity
from bosun.spec.vocab import WaitKind, WaitStatus
from bosun.store import waits_rows
from bosun.store.base import (
    APPROVED,
    DENIED,
    ESCALATED,
    EXPIRED,
    PENDING,
    ApprovalConflict,
    ApprovalRecord,
    AuditHead,
    AuditRecord,
    Breaker,
    KillSwitch,
    RunRecord,
)
from bosun.store.postgres_waits import settle_in_tx
from bosun.store.rows import RUN_COLUMNS, approval_audit, run_from_row, scope_tenant
from bosun.store.waits_rows import dumps, pg

DB_NOW = "extract(epoch from clock_timestamp())::double precision"

_AUDIT_LOCK = (
    "SELECT pg_advisory_xact_lock(hashtext('bosun.audit:' || coalesce(current_schema(), '')))"
)

GOVERNANCE_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS approvals (
        id TEXT PRIMARY KEY,
        run_id TEXT NOT NULL,
        call_id TEXT NOT NULL,
        tenant TEXT NOT NULL,
        agent TEXT NOT NULL,
        tool TEXT NOT NULL,
        arguments TEXT NOT NULL,
        role TEXT NOT NULL,
        rule TEXT NOT NULL,
        reason TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        expires_at DOUBLE PRECISION,
        on_expiry TEXT NOT NULL,
        escalate_to TEXT,
        decided_by TEXT,
        decided_at DOUBLE PRECISION,
        comment TEXT,
        edited_arguments TEXT,
        replaces TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS approvals_by_status ON approvals(status, created_at)",
    "CREATE INDEX IF NOT EXISTS approvals_by_run ON approvals(run_id)",
    """CREATE TABLE IF NOT EXISTS kill_switches (
        scope TEXT PRIMARY KEY,
        reason TEXT NOT NULL,
        set_by TEXT NOT NULL,
        set_at DOUBLE PRECISION NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS breakers (
        key TEXT PRIMARY KEY,
        failures INTEGER NOT NULL,
        opened_at DOUBLE PRECISION,
        probe_until DOUBLE PRECISION
    )""",
    """CREATE TABLE IF NOT EXISTS rate_counters (
        key TEXT PRIMARY KEY,
        window_start DOUBLE PRECISION NOT NULL,
        count INTEGER NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS audit (
        seq BIGINT PRIMARY KEY,
        ts DOUBLE PRECISION NOT NULL,
        tenant TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        subject TEXT NOT NULL,
        data TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    )""",
    # The chain's head, created (from the chain as it is: an upgrade) with the table only,
    # so a deleted head row stays missing and `bosun audit verify` reports it.
    f"""DO $$ BEGIN
    IF to_regclass('audit_head') IS NULL THEN
        CREATE TABLE audit_head (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            seq BIGINT NOT NULL,
            hash TEXT NOT NULL,
            count BIGINT NOT NULL,
            ts DOUBLE PRECISION NOT NULL
        );
        INSERT INTO audit_head(id, seq, hash, count, ts)
        SELECT 1, coalesce(max(seq), 0),
            coalesce((SELECT hash FROM audit ORDER BY seq DESC LIMIT 1), '{GENESIS}'),
            count(*), extract(epoch from clock_timestamp()) FROM audit;
    END IF;
    END $$""",
]

APPROVAL_COLUMNS = (
    "id, run_id, call_id, tenant, agent, tool, arguments, role, rule, reason, status,"
    " created_at, expires_at, on_expiry, escalate_to, decided_by, decided_at, comment,"
    " edited_arguments, replaces"
)

INSERT_APPROVAL_SQL = (
    f"INSERT INTO approvals({APPROVAL_COLUMNS}) VALUES"
    " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, NULL, NULL, NULL, NULL, NULL)"
)


# (key, threshold, threshold) with `now` the database clock: a failure opens the breaker at
# the threshold, or at once when it was a probe's.
BREAKER_FAILURE = (
    "INSERT INTO breakers(key, failures, opened_at, probe_until)"
    " VALUES (%s, 1, CASE WHEN 1 >= %s THEN {now} END, NULL)"
    " ON CONFLICT (key) DO UPDATE SET failures = breakers.failures + 1,"
    " opened_at = CASE WHEN breakers.failures + 1 >= %s OR breakers.probe_until IS NOT NULL"
    " THEN {now} ELSE breakers.opened_at END, probe_until = NULL"
    " RETURNING opened_at IS NOT NULL"
)
# (reset_after, key, reset_after): one probe at a time once the breaker has been open long
# enough; a probe whose caller died is given up after `reset_after`.
BREAKER_PROBE = (
    "UPDATE breakers SET probe_until = {now} + %s WHERE key = %s AND opened_at IS NOT NULL"
    " AND opened_at <= {now} - %s AND (probe_until IS NULL OR probe_until < {now})"
    " RETURNING key"
)


async def insert_audit(conn: psycopg.AsyncConnection, entries: Sequence[AuditEntry]) -> None:
    """Extend the hash chain, inside the caller's transaction; call it last in that transaction."""
    if not entries:
        return
    entries = await _redacted(conn, entries)
    await conn.execute(_AUDIT_LOCK)
    cur = await conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
    row = await cur.fetchone()
    seq, prev = (row[0], row[1]) if row else (0, GENESIS)
    params = []
    for entry in entries:
        seq += 1
        digest = chain_hash(prev, entry)
        params.append(
            (
                seq,
                entry.ts,
                entry.tenant,
                entry.actor,
                entry.action,
                entry.subject,
                orjson.dumps(entry.data, option=orjson.OPT_NON_STR_KEYS).decode(),
                prev,
                digest,
            )
        )
        prev = digest
    async with conn.cursor() as c:
        await c.executemany(
            "INSERT INTO audit(seq, ts, tenant, actor, action, subject, data, prev_hash, hash)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            params,
        )
        await c.execute(
            f"UPDATE audit_head SET seq=%s, hash=%s, count=count+%s, ts={DB_NOW} WHERE id=1",
            (seq, prev, len(params)),
        )


async def _redacted(
    conn: psycopg.AsyncConnection, entries: Sequence[AuditEntry]
) -> Sequence[AuditEntry]:
    """The records as they are chained: a call's values redacted by its run's pinned
    definition (read only for the records that hold any)."""
    runs = list({e.subject for e in entries if needs_redaction(e)})
    if not runs:
        return entries
    cur = await conn.execute(
        "SELECT r.id, v.spec FROM runs r JOIN agent_versions v ON v.version = r.agent_version"
        " WHERE r.id = ANY(%s)",
        (runs,),
    )
    specs = {
        run_id: Sensitivity.of_spec(orjson.loads(spec)) for run_id, spec in await cur.fetchall()
    }
    return [redacted(e, specs.get(e.subject)) for e in entries]


class PostgresGovernance:
    """Governance methods of `PostgresStore` (which provides `_session`)."""

    def _session(
        self, what: str
    ) -> contextlib.AbstractAsyncContextManager[psycopg.AsyncConnection]:
        raise NotImplementedError

    # -- maintenance -----------------------------------------------------

    async def acquire(self, run_id: str, worker: str, *, lease_seconds: float) -> RunRecord | None:
        async with self._session(f"acquire run {run_id} for {worker}") as conn:
            cur = await conn.execute(
                f"WITH r AS (UPDATE runs SET lease_owner=%s, lease_expires_at={DB_NOW} + %s"
                " WHERE id=%s AND (lease_owner IS NULL OR lease_owner=%s"
                f" OR lease_expires_at IS NULL OR lease_expires_at < {DB_NOW}) RETURNING *)"
                f" SELECT {RUN_COLUMNS} FROM r JOIN agent_versions v ON v.version = r.agent_version",
                (worker, lease_seconds, run_id, worker),
            )
            row = await cur.fetchone()
        return run_from_row(row) if row else None

    # -- approvals -------------------------------------------------------

    async def get_approval(self, approval_id: str) -> ApprovalRecord | None:
        async with self._session(f"read approval {approval_id}") as conn:
            found = await _approvals(conn, "id=%s", (approval_id,))
        return found[0] if found else None

    async def list_approvals(
        self,
        *,
        status: str | None = PENDING,
        tenant: str | None = None,
        run_id: str | None = None,
    ) -> list[ApprovalRecord]:
        where, params = ["true"], []
        for column, value in (("status", status), ("tenant", tenant), ("run_id", run_id)):
            if value is not None:
                where.append(f"{column}=%s")
                params.append(value)
        async with self._session("list approvals") as conn:
            return await _approvals(conn, " AND ".join(where), params)

    async def resolve_approval(
        self,
        approval_id: str,
        *,
        decision: str,
        by: str,
        comment: str | None = None,
        arguments: str | None = None,
    ) -> ApprovalRecord:
        if decision not in (APPROVED, DENIED):
            raise StoreError(f"an approval is resolved as approved or denied, not {decision!r}")
        now = time.time()
        async with self._session(f"resolve approval {approval_id}") as conn:
            async with conn.transaction():
                cur = await conn.execute(
                    "UPDATE approvals SET status=%s, decided_by=%s, decided_at=%s, comment=%s,"
                    f" edited_arguments=%s WHERE id=%s AND status=%s RETURNING {APPROVAL_COLUMNS}",
                    (decision, by, now, comment, arguments, approval_id, PENDING),
                )
                row = await cur.fetchone()
                if row is not None:
                    record = ApprovalRecord(*row)
                    # An approval is a wait: settled through the one wake path.
                    await settle_in_tx(conn, record.id, WaitStatus.SETTLED, dumps(decision), now)
                    await insert_audit(conn, [approval_audit(record, "approval_decided", by, now)])
                    return record
            existing = await _approvals(conn, "id=%s", (approval_id,))
        if not existing:
            raise ApprovalConflict(f"no approval {approval_id!r}")
        old = existing[0]
        raise ApprovalConflict(
            f"approval {approval_id} is already {old.status}"
            + (f" by {old.decided_by}" if old.decided_by else "")
            + "; it cannot be resolved twice"
        )

    async def expire_approvals(self, now: float) -> list[ApprovalRecord]:
        async with self._session("expire approvals") as conn, conn.transaction():
            cur = await conn.execute(
                f"SELECT {APPROVAL_COLUMNS} FROM approvals WHERE status=%s"
                " AND expires_at IS NOT NULL AND expires_at < %s"
                " ORDER BY created_at, id FOR UPDATE SKIP LOCKED",
                (PENDING, now),
            )
            due = [ApprovalRecord(*row) for row in await cur.fetchall()]
            out: list[ApprovalRecord] = []
            audit: list[AuditEntry] = []
            for old in due:
                if old.on_expiry == "escalate" and old.escalate_to:
                    await conn.execute(
                        "UPDATE approvals SET status=%s, decided_by='expiry', decided_at=%s"
                        " WHERE id=%s",
                        (ESCALATED, now, old.id),
                    )
                    cur = await conn.execute(
                        f"INSERT INTO approvals({APPROVAL_COLUMNS}) SELECT %s, run_id, call_id,"
                        " tenant, agent, tool, arguments, %s, rule, reason, %s, %s, NULL, 'deny',"
                        " NULL, NULL, NULL, NULL, NULL, id FROM approvals WHERE id=%s"
                        f" RETURNING {APPROVAL_COLUMNS}",
                        (f"{old.id}.esc", old.escalate_to, PENDING, now, old.id),
                    )
                    new = ApprovalRecord(*await cur.fetchone())
                    await conn.execute(
                        pg(waits_rows.INSERT),
                        (
                            new.id,
                            new.run_id,
                            WaitKind.APPROVAL,
                            new.id,
                            new.call_id,
                            None,
                            None,
                            now,
                        ),
                    )  # the new approver's wait, then the old one's ends
                    await settle_in_tx(conn, old.id, WaitStatus.EXPIRED, dumps("escalated"), now)
                    audit.append(approval_audit(new, "approval_escalated", "expiry", now))
                    out.append(new)
                else:
                    cur = await conn.execute(
                        "UPDATE approvals SET status=%s, decided_by='expiry', decided_at=%s"
                        f" WHERE id=%s RETURNING {APPROVAL_COLUMNS}",
                        (EXPIRED, now, old.id),
                    )
                    expired = ApprovalRecord(*await cur.fetchone())
                    audit.append(approval_audit(expired, "approval_expired", "expiry", now))
                    await settle_in_tx(conn, old.id, WaitStatus.EXPIRED, dumps("expired"), now)
                    out.append(expired)
            await insert_audit(conn, audit)
        return out

    # -- kill switches, quotas, spend ------------------------------------------

    async def set_kill_switch(self, scope: str, *, reason: str, by: str) -> KillSwitch:
        now = time.time()
        async with self._session(f"set kill switch {scope}") as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO kill_switches(scope, reason, set_by, set_at) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (scope) DO UPDATE SET reason=EXCLUDED.reason,"
                " set_by=EXCLUDED.set_by, set_at=EXCLUDED.set_at",
                (scope, reason, by, now),
            )
            entry = AuditEntry(
                now, by, "kill_switch_set", scope, {"reason": reason}, scope_tenant(scope)
            )
            await insert_audit(conn, [entry])
        return KillSwitch(scope, reason, by, now)

    async def clear_kill_switch(self, scope: str, *, by: str) -> bool:
        now = time.time()
        async with self._session(f"clear kill switch {scope}") as conn, conn.transaction():
            cur = await conn.execute(
                "DELETE FROM kill_switches WHERE scope=%s RETURNING reason", (scope,)
            )
            gone = await cur.fetchone() is not None
            if gone:
                entry = AuditEntry(now, by, "kill_switch_cleared", scope, {}, scope_tenant(scope))
                await insert_audit(conn, [entry])
        return gone

    async def kill_switches(self) -> list[KillSwitch]:
        async with self._session("list kill switches") as conn:
            cur = await conn.execute(
                "SELECT scope, reason, set_by, set_at FROM kill_switches ORDER BY set_at"
            )
            return [KillSwitch(*r) for r in await cur.fetchall()]

    async def active_kill_switch(self, scopes: Sequence[str]) -> KillSwitch | None:
        async with self._session("check kill switches") as conn:
            cur = await conn.execute(
                "SELECT scope, reason, set_by, set_at FROM kill_switches WHERE scope = ANY(%s)"
                " ORDER BY set_at LIMIT 1",
                (list(scopes),),
            )
            row = await cur.fetchone()
        return KillSwitch(*row) if row else None

    async def breaker_failure(self, key: str, *, threshold: int) -> bool:
        async with self._session(f"count a failure of {key}") as conn:
            cur = await conn.execute(
                BREAKER_FAILURE.format(now=DB_NOW), (key, threshold, threshold)
            )
            (opened,) = await cur.fetchone()
        return bool(opened)

    async def breaker_success(self, key: str) -> None:
        async with self._session(f"close the breaker {key}") as conn:
            await conn.execute("DELETE FROM breakers WHERE key=%s", (key,))

    async def breaker_probe(self, key: str, *, reset_after: float) -> bool:
        async with self._session(f"probe the breaker {key}") as conn:
            cur = await conn.execute(
                BREAKER_PROBE.format(now=DB_NOW), (reset_after, key, reset_after)
            )
            if await cur.fetchone() is not None:
                return True
            cur = await conn.execute("SELECT opened_at FROM breakers WHERE key=%s", (key,))
            row = await cur.fetchone()
        return row is None or row[0] is None  # closed meanwhile

    async def breakers(self) -> list[Breaker]:
        async with self._session("read the breakers") as conn:
            cur = await conn.execute(
                "SELECT key, failures, opened_at, probe_until FROM breakers ORDER BY key"
            )
            return [Breaker(*row) for row in await cur.fetchall()]

    async def take_rate(self, key: str, *, limit: int, window_seconds: float) -> bool:
        # The window is cut by the database clock, so every process counts in the same one.
        async with self._session(f"count rate {key}") as conn:
            cur = await conn.execute(
                "INSERT INTO rate_counters(key, window_start, count)"
                f" VALUES (%s, floor({DB_NOW} / %s) * %s, 1)"
                " ON CONFLICT (key) DO UPDATE SET count = CASE WHEN"
                " rate_counters.window_start = EXCLUDED.window_start"
                " THEN rate_counters.count + 1 ELSE 1 END,"
                " window_start = EXCLUDED.window_start RETURNING count",
                (key, window_seconds, window_seconds),
            )
            (count,) = await cur.fetchone()
        return count <= limit

    async def spend_since(
        self, since: float, *, agent: str | None = None, tenant: str | None = None
    ) -> float:
        sql, params = "SELECT coalesce(sum(cost), 0) FROM runs WHERE created_at >= %s", [since]
        if agent is not None:
            sql += " AND agent=%s"
            params.append(agent)
        if tenant is not None:
            sql += " AND tenant=%s"
            params.append(tenant)
        async with self._session("sum spend") as conn:
            cur = await conn.execute(sql, params)
            (total,) = await cur.fetchone()
        return float(total)

    # -- audit -------------------------------------------------------------

    async def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        async with self._session("append audit records") as conn, conn.transaction():
            await insert_audit(conn, entries)

    async def audit_head(self) -> AuditHead | None:
        async with self._session("read the audit chain's head") as conn:
            cur = await conn.execute("SELECT seq, hash, count, ts FROM audit_head")
            row = await cur.fetchone()
        return AuditHead(*row) if row else None

    async def journal_audit_counts(self) -> dict[tuple[str, str], int]:
        # Every journal event's record is chained in the events' own transaction.
        async with self._session("count the journal's governance events") as conn:
            cur = await conn.execute(
                "SELECT run_id, CASE kind WHEN 'run_finished' THEN 'run_killed' ELSE kind END,"
                " count(*) FROM events WHERE kind = ANY(%s) OR (kind = 'run_finished'"
                " AND convert_from(data, 'UTF8')::jsonb->>'status' = 'killed') GROUP BY 1, 2",
                (sorted(AUDITED_KINDS),),
            )
            rows = await cur.fetchall()
        return {(run_id, action): n for run_id, action, n in rows}

    async def audit_records(
        self, after_seq: int = 0, limit: int | None = None
    ) -> list[AuditRecord]:
        sql = (
            "SELECT seq, ts, actor, action, subject, data, tenant, prev_hash, hash FROM audit"
            " WHERE seq > %s ORDER BY seq"
        )
        params: list[object] = [after_seq]
        if limit is not None:
            sql += " LIMIT %s"
            params.append(limit)
        async with self._session("read the audit chain") as conn:
            cur = await conn.execute(sql, params)
            rows = await cur.fetchall()
        return [
            AuditRecord(
                seq, AuditEntry(ts, actor, action, subject, orjson.loads(data), tenant), prev, h
            )
            for seq, ts, actor, action, subject, data, tenant, prev, h in rows
        ]


async def _approvals(
    conn: psycopg.AsyncConnection, where: str, params: Sequence[object]
) -> list[ApprovalRecord]:
    cur = await conn.execute(
        f"SELECT {APPROVAL_COLUMNS} FROM approvals WHERE {where} ORDER BY created_at, id", params
    )
    return [ApprovalRecord(*row) for row in await cur.fetchall()]
